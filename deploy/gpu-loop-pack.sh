#!/usr/bin/env bash
# Packs what deploy/gpu-loop.sh needs on the GPU machine: the live loop's real models (the
# default pack's, with SmolLM2-135M as its language model: the default's 1.1 GB cannot travel),
# the spoken sessions of deploy/loop-sessions.sh and espeak-ng's data, as one xz'd tar cut into
# parts that each fit one call of the device tool (64 MiB with the working tree, which counts as 15 MB: the fuzz corpus is 10,000 small files):
#   .gpu/loop/p1       the first part, small enough to travel beside .gpu/iris.xz and .gpu/lib
#   .gpu/loop/p2 …     the rest, one per call
# The calls must follow each other while the machine is warm (the parts left there are kept);
# the last one runs deploy/gpu-loop.sh. Needs the models pulled (`iris models pull …`) and
# IRIS_LOOP_SESSIONS (deploy/loop-sessions.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
H=${IRIS_HOME:-$HOME/.local/share/iris}
S=${IRIS_LOOP_SESSIONS:-$H/data/loop-sessions}
MODELS="onnxruntime openwakeword silero-vad smart-turn ppocr-v6-tiny whisper-tiny.en smollm2-135m-instruct piper-en_US-joe-medium"
FIRST_MIB=${FIRST_MIB:-23}
PART_MIB=${PART_MIB:-47}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/pack/home/models" "$tmp/pack/sessions"
for id in $MODELS; do
  [ -d "$H/models/$id" ] || { echo "$id is not installed: iris models pull $id" >&2; exit 1; }
  cp -a "$H/models/$id" "$tmp/pack/home/models/"
done
cp "$S"/0?.wav "$S/sessions.jsonl" "$tmp/pack/sessions/"
cp -a /usr/lib/x86_64-linux-gnu/espeak-ng-data "$tmp/pack/"
rm -rf .gpu/loop
mkdir -p .gpu/loop
tar -C "$tmp/pack" -cf - . | xz -T2 -1 > "$tmp/all.tar.xz"
head -c "$((FIRST_MIB << 20))" "$tmp/all.tar.xz" > "$tmp/first"
tail -c "+$(((FIRST_MIB << 20) + 1))" "$tmp/all.tar.xz" | split -b "${PART_MIB}M" -d -a 1 - "$tmp/rest."
mkdir -p .gpu/loop/p1 && mv "$tmp/first" .gpu/loop/p1/part
n=2
for f in "$tmp"/rest.*; do
  mkdir -p ".gpu/loop/p$n" && mv "$f" ".gpu/loop/p$n/part"
  n=$((n + 1))
done
du -sh .gpu/loop/p* | sed 's/^/  /'
echo "$((n - 1)) parts: carry .gpu/iris.xz .gpu/lib .gpu/loop/p1 first, then each part; the last call runs deploy/gpu-loop.sh"
