#!/usr/bin/env bash
# Real human speech with known transcripts, for `iris eval asr`: Debian's Asterisk prompts,
# recorded by Allison Smith (US English, CC BY-SA 3.0), 8 kHz telephone WAVs with a transcript
# list. Writes NAME.wav + NAME.txt pairs into DIR. Without --all, a fixed subset: every 4th
# prompt of five words or more (about 50 files, 4 minutes of speech).
# Usage: deploy/speech-corpus.sh DIR [--all]
set -euo pipefail
dir=${1:?usage: deploy/speech-corpus.sh DIR [--all]}
all=${2:-}
if [ -f "$dir/.complete$all" ]; then exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download asterisk-core-sounds-en asterisk-core-sounds-en-wav >/dev/null 2>&1) || {
    echo "error: cannot download Debian's asterisk-core-sounds-en packages; check apt sources (apt-get update)" >&2
    exit 1
}
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
sounds="$work/x/usr/share/asterisk/sounds/en_US_f_Allison"
list="$work/x/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
tmp="$dir.part"
rm -rf "$tmp" && mkdir -p "$tmp"
# "name: text" lines; sound effects are in [brackets]; only top-level prompts (not single digits or letters).
zcat "$list" | awk -v all="$all" -F': ' '
    /^[a-z0-9-]+: / && $2 !~ /\[/ {
        text = substr($0, length($1) + 3)
        if (all == "--all" || split(text, w, " ") >= 5) { n++; if (all == "--all" || n % 4 == 1) print $1 "\t" text }
    }' | while IFS=$'\t' read -r name text; do
    [ -f "$sounds/$name.wav" ] || continue
    cp "$sounds/$name.wav" "$tmp/$name.wav"
    printf '%s\n' "$text" > "$tmp/$name.txt"
done
rm -rf "$dir" && mv "$tmp" "$dir"
touch "$dir/.complete$all"
echo "$(ls "$dir"/*.wav | wc -l) recordings in $dir" >&2
