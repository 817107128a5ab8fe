#!/usr/bin/env bash
# Spoken sessions for the live loop's tests and `iris bench loop`: "Hey Jarvis", a pause, a
# question, over light background noise, in espeak-ng voices (not Iris's own Piper voice).
# Usage: deploy/loop-sessions.sh DIR. Writes DIR/NN.wav and DIR/sessions.jsonl (file, question,
# and the words a right answer contains). Deterministic: the same files on every machine.
set -euo pipefail
# Repeatable dither and noise in every sox call, so the files are the same on every run.
export SOX_OPTS=-R
dir=$1
mkdir -p "$dir"
tmp=$(mktemp -d)
# sum A B …: the sum of decimal numbers (awk, as bc is not on a minimal Debian).
sum() { awk 'BEGIN { s = 0; for (i = 1; i < ARGC; i++) s += ARGV[i]; printf "%.6f", s }' "$@"; }
trap 'rm -rf "$tmp"' EXIT
# voice|speed|question|answer words (any of them, |-separated). " ... " in a question is a
# 0.4 s pause in the middle of the sentence (shorter than the end-of-turn silence: the question
# must come out whole, not cut at the pause). The questions are ones the suite's small model
# (SmolLM2) answers right whatever the kernels' rounding: these tests are of the loop, and
# `iris eval answers` is of the model. ("The capital of Italy" was one it got right by luck: a
# change of rounding turned its answer into London.)
sessions=(
    "en-us+m3|150|What is the capital of France?|paris"
    "en-us+f2|140|What is the capital of England?|london"
    "en-us+f4|160|What is seven times six?|42|forty-two|forty two"
    "en-gb-scotland|145|What is the capital of France?|paris"
    "en-gb+m4|150|What is twelve plus thirty?|42|forty-two|forty two"
    "en-gb-x-rp+f3|135|What is the capital of Japan?|tokyo"
    "en-us+m1|150|What is the capital ... of Germany?|berlin"
)
# noisy OUT PART.wav…: the parts joined, with light pink noise about 30 dB below the speech
# (repeatable: -R).
noisy() {
    local out=$1
    shift
    sox "$@" "$tmp/speech.wav"
    sox -R -n -r 16000 -c 1 -b 16 "$tmp/noise.wav" synth "$(soxi -D "$tmp/speech.wav")" pinknoise vol 0.02
    sox -R -m "$tmp/speech.wav" "$tmp/noise.wav" -b 16 "$out"
}

# speak_session VOICE SPEED QUESTION OUT.wav [WAKE]: 1 s of quiet, the wake phrase ("Hey Jarvis"
# unless WAKE), 0.5 s, the question, 3.5 s, with light noise about 30 dB below the speech
# (repeatable: -R).
speak_session() {
    local voice=$1 speed=$2 question=$3 out=$4 wake=${5:-Hey Jarvis}
    espeak-ng -v "$voice" -s "$speed" -w "$tmp/wake.wav" "$wake"
    sox "$tmp/wake.wav" -r 16000 -c 1 -b 16 "$tmp/wake16.wav"
    # One utterance, the pause as an SSML break, so the voice keeps the sentence's intonation
    # across it (an unfinished sentence sounds unfinished).
    ssml="<speak>${question// ... /<break time=\"400ms\"/>}</speak>"
    espeak-ng -m -v "$voice" -s "$speed" -w "$tmp/q.wav" "$ssml"
    sox "$tmp/q.wav" -r 16000 -c 1 -b 16 "$tmp/q16.wav"
    sox -n -r 16000 -c 1 -b 16 "$tmp/s1.wav" trim 0 1.0
    sox -n -r 16000 -c 1 -b 16 "$tmp/s2.wav" trim 0 0.5
    sox -n -r 16000 -c 1 -b 16 "$tmp/s3.wav" trim 0 3.5
    noisy "$out" "$tmp/s1.wav" "$tmp/wake16.wav" "$tmp/s2.wav" "$tmp/q16.wav" "$tmp/s3.wav"
}

: > "$dir/sessions.jsonl.tmp"
n=0
for s in "${sessions[@]}"; do
    n=$((n + 1))
    IFS='|' read -r voice speed question answers <<< "$s"
    name=$(printf '%02d' "$n")
    speak_session "$voice" "$speed" "$question" "$dir/$name.wav"
    question=${question// ... / }
    words=$(printf '%s' "$answers" | sed 's/|/", "/g')
    printf '{"file": "%s.wav", "question": "%s", "answer_has_any": ["%s"]}\n' "$name" "$question" "$words" >> "$dir/sessions.jsonl.tmp"
done
mv "$dir/sessions.jsonl.tmp" "$dir/sessions.jsonl"

# Questions about what is in front of the user, each with the photo the camera shows
# (deploy/sample-images.sh) and the words a right answer contains: look.jsonl, look-NN.wav.
looks=(
    "en-us+f3|150|What is in front of me?|coffee.png|espresso|coffee|cup"
    "en-gb+m2|145|Can you read this for me?|page.png|segmentation"
    "en-us+m4|150|What am I holding?|coffee.png|espresso|coffee|cup"
)
: > "$dir/look.jsonl.tmp"
n=0
for s in "${looks[@]}"; do
    n=$((n + 1))
    IFS='|' read -r voice speed question image answers <<< "$s"
    name=look-$(printf '%02d' "$n")
    speak_session "$voice" "$speed" "$question" "$dir/$name.wav"
    words=$(printf '%s' "$answers" | sed 's/|/", "/g')
    printf '{"file": "%s.wav", "question": "%s", "image": "%s", "answer_has_any": ["%s"]}\n' "$name" "$question" "$image" "$words" >> "$dir/look.jsonl.tmp"
done
mv "$dir/look.jsonl.tmp" "$dir/look.jsonl"

# The other wake words (the TFLite set's hey_rhasspy and okay_nabu), each with a question:
# words.jsonl, words-NN.wav. "Raspy" is how espeak-ng says "Rhasspy".
others=(
    "en-us+m3|150|Okay Nabu|okay_nabu|What is the capital of Germany?|berlin"
    "en-us+f2|150|Hey Raspy|hey_rhasspy|What is the capital of France?|paris"
    "en-gb-x-rp+f3|135|Okay Nabu|okay_nabu|What is the capital of England?|london"
    "en-gb+m4|145|Hey Raspy|hey_rhasspy|What is the capital of Japan?|tokyo"
)
: > "$dir/words.jsonl.tmp"
n=0
for s in "${others[@]}"; do
    n=$((n + 1))
    IFS='|' read -r voice speed wake word question answers <<< "$s"
    name=words-$(printf '%02d' "$n")
    speak_session "$voice" "$speed" "$question" "$dir/$name.wav" "$wake"
    words=$(printf '%s' "$answers" | sed 's/|/", "/g')
    printf '{"file": "%s.wav", "wake_word": "%s", "question": "%s", "answer_has_any": ["%s"]}\n' "$name" "$word" "$question" "$words" >> "$dir/words.jsonl.tmp"
done
mv "$dir/words.jsonl.tmp" "$dir/words.jsonl"

# A timer through the room: "Hey Jarvis", "Set a timer for ten seconds.", then "Stop." alone
# 15 s after the question ends (while the timer rings), then quiet: timer.wav, with the times
# (seconds) of each part in timer.json.
espeak-ng -v en-gb+m4 -s 150 -w "$tmp/w.wav" "Hey Jarvis"
espeak-ng -v en-gb+m4 -s 145 -w "$tmp/q.wav" "Set a timer for ten seconds."
espeak-ng -v en-gb+m3 -s 150 -w "$tmp/stop.wav" "Stop."
for f in w q stop; do sox "$tmp/$f.wav" -r 16000 -c 1 -b 16 "$tmp/${f}16.wav"; done
sox -n -r 16000 -c 1 -b 16 "$tmp/s1.wav" trim 0 1.0
sox -n -r 16000 -c 1 -b 16 "$tmp/s2.wav" trim 0 0.5
sox -n -r 16000 -c 1 -b 16 "$tmp/s15.wav" trim 0 15.0
sox -n -r 16000 -c 1 -b 16 "$tmp/s6.wav" trim 0 6.0
noisy "$dir/timer.wav" "$tmp/s1.wav" "$tmp/w16.wav" "$tmp/s2.wav" "$tmp/q16.wav" "$tmp/s15.wav" "$tmp/stop16.wav" "$tmp/s6.wav"
q_end=$(sum 1.0 $(soxi -D "$tmp/w16.wav") 0.5 $(soxi -D "$tmp/q16.wav"))
stop_start=$(sum $q_end 15.0)
stop_end=$(sum $stop_start $(soxi -D "$tmp/stop16.wav"))
printf '{"file": "timer.wav", "question_end": %.3f, "stop_start": %.3f, "stop_end": %.3f}\n' "$q_end" "$stop_start" "$stop_end" > "$dir/timer.json"

# "Stop." alone over a long answer: "Hey Jarvis", "Tell me a story about a dragon.", and 4 s
# after the question ends (while the story is being told) "Stop.", then quiet: story.wav and
# story.json.
espeak-ng -v en-gb+m4 -s 145 -w "$tmp/q.wav" "Tell me a story about a dragon."
sox "$tmp/q.wav" -r 16000 -c 1 -b 16 "$tmp/q16.wav"
sox -n -r 16000 -c 1 -b 16 "$tmp/s4.wav" trim 0 4.0
sox -n -r 16000 -c 1 -b 16 "$tmp/s8.wav" trim 0 8.0
noisy "$dir/story.wav" "$tmp/s1.wav" "$tmp/w16.wav" "$tmp/s2.wav" "$tmp/q16.wav" "$tmp/s4.wav" "$tmp/stop16.wav" "$tmp/s8.wav"
q_end=$(sum 1.0 $(soxi -D "$tmp/w16.wav") 0.5 $(soxi -D "$tmp/q16.wav"))
stop_start=$(sum $q_end 4.0)
stop_end=$(sum $stop_start $(soxi -D "$tmp/stop16.wav"))
printf '{"file": "story.wav", "question_end": %.3f, "stop_start": %.3f, "stop_end": %.3f}\n' "$q_end" "$stop_start" "$stop_end" > "$dir/story.json"

# Barge-in by the wake word over a long answer, in four voices: "Hey Jarvis", a request for a
# story, 4 s later "Hey Jarvis" (while the story plays; its trailing silence trimmed, so its end
# is where the word ends), "Stop.", then quiet: barge-NN.wav, and barge.jsonl with the times of
# the interrupting wake word.
barges=(
    "en-gb+m4|145|Tell me a story about a dragon."
    "en-us+m1|150|Tell me a long story about a lighthouse keeper."
    "en-us+m3|150|Tell me a story about the sea."
    "en-gb-scotland|145|Tell me a story about a dragon."
)
: > "$dir/barge.jsonl.tmp"
n=0
for b in "${barges[@]}"; do
    n=$((n + 1))
    IFS='|' read -r voice speed request <<< "$b"
    espeak-ng -v "$voice" -s "$speed" -w "$tmp/bw.wav" "Hey Jarvis"
    sox "$tmp/bw.wav" -r 16000 -c 1 -b 16 "$tmp/bw16.wav" reverse silence 1 0.01 0.5% reverse
    espeak-ng -v "$voice" -s "$speed" -w "$tmp/bq.wav" "$request"
    sox "$tmp/bq.wav" -r 16000 -c 1 -b 16 "$tmp/bq16.wav"
    espeak-ng -v "$voice" -s "$speed" -w "$tmp/bs.wav" "Stop."
    sox "$tmp/bs.wav" -r 16000 -c 1 -b 16 "$tmp/bs16.wav"
    sox -n -r 16000 -c 1 -b 16 "$tmp/s03.wav" trim 0 0.3
    name=barge-$(printf '%02d' "$n")
    noisy "$dir/$name.wav" "$tmp/s1.wav" "$tmp/bw16.wav" "$tmp/s2.wav" "$tmp/bq16.wav" "$tmp/s4.wav" "$tmp/bw16.wav" "$tmp/s03.wav" "$tmp/bs16.wav" "$tmp/s6.wav"
    q_end=$(sum 1.0 $(soxi -D "$tmp/bw16.wav") 0.5 $(soxi -D "$tmp/bq16.wav"))
    wake_start=$(sum $q_end 4.0)
    wake_end=$(sum $wake_start $(soxi -D "$tmp/bw16.wav"))
    printf '{"file": "%s.wav", "question_end": %.3f, "wake_start": %.3f, "wake_end": %.3f}\n' "$name" "$q_end" "$wake_start" "$wake_end" >> "$dir/barge.jsonl.tmp"
done
mv "$dir/barge.jsonl.tmp" "$dir/barge.jsonl"

# Iris talking to itself: eight requests for a long story, each followed by 100 s of quiet in
# which the story is told (heard back through the echo path by `iris bench loop --self-talk`):
# selftalk.wav, and selftalk.json with where each request's wake word starts and ends.
topics=("a dragon" "a lighthouse keeper" "the sea" "a clockmaker" "a fox in winter" "a lost robot" "two sisters and a boat" "a mountain village")
: > "$tmp/talk.list"
wakes=""
at=0
for topic in "${topics[@]}"; do
    espeak-ng -v en-us+m3 -s 150 -w "$tmp/tw.wav" "Hey Jarvis"
    sox "$tmp/tw.wav" -r 16000 -c 1 -b 16 "$tmp/tw16.wav" reverse silence 1 0.01 0.5% reverse
    espeak-ng -v en-us+m3 -s 150 -w "$tmp/tq.wav" "Tell me a long story about $topic."
    n=$(wc -l < "$tmp/talk.list")
    sox "$tmp/tq.wav" -r 16000 -c 1 -b 16 "$tmp/tq$n.wav"
    sox -n -r 16000 -c 1 -b 16 "$tmp/s100.wav" trim 0 100.0
    cp "$tmp/tw16.wav" "$tmp/tw$n.wav"
    printf '%s\n' "$tmp/s1.wav" "$tmp/tw$n.wav" "$tmp/s2.wav" "$tmp/tq$n.wav" "$tmp/s100.wav" >> "$tmp/talk.list"
    wake_start=$(sum $at 1.0)
    wake_end=$(sum $wake_start $(soxi -D "$tmp/tw16.wav"))
    wakes="$wakes${wakes:+, }[$wake_start, $wake_end]"
    at=$(sum $wake_end 0.5 $(soxi -D "$tmp/tq$n.wav") 100.0)
done
mapfile -t parts < "$tmp/talk.list"
noisy "$dir/selftalk.wav" "${parts[@]}"
printf '{"file": "selftalk.wav", "wakes": [%s]}\n' "$wakes" > "$dir/selftalk.json"
