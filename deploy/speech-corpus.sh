#!/usr/bin/env bash
# Real human speech with known transcripts, for `iris eval asr`: Debian's Asterisk prompts,
# 8 kHz telephone WAVs with a transcript list, CC BY-SA 3.0: US English (Allison Smith, the
# default), Canadian French (June Wallack) or Mexican Spanish (LANG fr or es). Writes NAME.wav +
# NAME.txt pairs into DIR. Without --all, a fixed subset: every 4th prompt of five words or more
# (about 50 English files, 4 minutes of speech).
# Usage: deploy/speech-corpus.sh DIR [--all] [LANG]
set -euo pipefail
dir=${1:?usage: deploy/speech-corpus.sh DIR [--all] [LANG]}
all=""
lang=en
for a in "${@:2}"; do
    case "$a" in --all) all=--all ;; en|fr|es) lang=$a ;; *) echo "error: unknown argument $a" >&2; exit 1 ;; esac
done
if [ -f "$dir/.complete$all" ]; then exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "asterisk-core-sounds-$lang" "asterisk-core-sounds-$lang-wav" >/dev/null 2>&1) || {
    echo "error: cannot download Debian's asterisk-core-sounds-$lang packages; check apt sources (apt-get update)" >&2
    exit 1
}
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
sounds=$(echo "$work"/x/usr/share/asterisk/sounds/*_*)
list="$work/x/usr/share/doc/asterisk-core-sounds-$lang/core-sounds-$lang.txt.gz"
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
