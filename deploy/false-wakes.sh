#!/usr/bin/env bash
# False wakes on audio with no wake word in it: every sound of Debian's fillets-ng-data (game
# music and English voice acting, ~30 min) joined into one recording and heard by `iris listen`
# in wake_word mode. Prints the wakes, per hour, and the highest score. A regression figure,
# not a true false-accepts-per-hour (that needs hours of far-field household audio).
# Usage: deploy/false-wakes.sh [WORKDIR [IRIS LISTEN OPTIONS…]], e.g. `--config all-words.toml`
# to hear other wake words (needs apt-get download, sox with Ogg Vorbis)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
shift || true
mkdir -p "$work"
if [ ! -f "$work/negatives.wav" ]; then
    (cd "$work" && apt-get download fillets-ng-data >/dev/null 2>&1 && dpkg-deb -x fillets-ng-data_*_all.deb pkg)
    mkdir -p "$work/wav"
    i=0
    while IFS= read -r f; do
        i=$((i + 1))
        sox "$f" -r 16000 -c 1 -b 16 "$work/wav/$(printf '%04d' "$i").wav" 2>/dev/null || true
    done < <(find "$work/pkg" -name '*.ogg' | sort)
    sox "$work"/wav/*.wav "$work/negatives.wav"
fi
echo "$(soxi -d "$work/negatives.wav") of music and speech without the wake word"
./target/release/iris listen --mic-file "$work/negatives.wav" --speaker-file "$work/out.wav" --events "$work/events.jsonl" "$@" 2>&1 | tail -1
