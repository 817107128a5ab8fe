#!/usr/bin/env bash
# The live loop on the GPU machine (`iris bench loop --device cuda`): end of the user's speech →
# first audio out through the simulated room, Whisper and the language model on the GPU, the
# wake word, VAD, Smart Turn and Piper on its CPU, with the end of the turn by silence and by
# Smart Turn; then the same sessions with everything on that machine's CPU, for comparison. Reads the parts deploy/gpu-loop-pack.sh made (already on
# the machine, .gpu/loop/p*) and the CUDA build (.gpu/iris.xz, .gpu/lib). Results go to $OUT.
set -u
G=$(cd "$(dirname "$0")/.." && pwd)/.gpu
OUT=${OUT:-/tmp/gpu-out}
L=/tmp/loop
mkdir -p "$OUT" "$L"
ls -la "$G"/loop/p*/part > "$OUT/parts.txt" 2>&1
cat "$G"/loop/p*/part | python3 -c "import lzma, sys, tarfile; tarfile.open(fileobj=lzma.open(sys.stdin.buffer), mode='r|').extractall('$L')" ||
  { echo "the parts do not make a whole archive (one missing?)" | tee -a "$OUT/parts.txt"; exit 1; }
python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$G/iris.xz" "$G/iris"
chmod +x "$G/iris"
# espeak-ng's data where the library looks for it (Piper's phonemes).
mkdir -p /usr/lib/x86_64-linux-gnu && cp -a "$L/espeak-ng-data" /usr/lib/x86_64-linux-gnu/
export IRIS_HOME=$L/home
printf '[models]\nllm = "smollm2-135m-instruct"\n' > "$L/config.toml"
# The same with the recogniser starting at the pause (200 ms), not at a 100 ms lull.
printf '[models]\nllm = "smollm2-135m-instruct"\n[audio]\nlull_ms = 200\n' > "$L/lull200.toml"
printf '[models]\nasr_engine = "candle"\ndevice = "cuda"\n' > "$L/asr.toml"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc; } > "$OUT/machine.txt" 2>&1
# Where candle's Whisper spends a live question's decode on the GPU (spectrogram, encoder,
# decoder steps), against whisper.cpp on this machine's cores, on the sessions' recordings.
timeout 120 env LD_LIBRARY_PATH="$G/lib" "$G/iris" bench asr --config "$L/asr.toml" --engines-only --live --runs 5 "$L"/sessions/0?.wav \
  > "$OUT/asr.txt" 2>&1
# Each run loads the models afresh per session: about a minute for seven.
for run in "cuda false config" "cuda true config" "cuda true lull200" "cpu true config" "cuda true config"; do
  set -- $run
  echo "== --device $1 --semantic $2 ($3.toml)"
  timeout 130 env LD_LIBRARY_PATH="$G/lib" "$G/iris" bench loop --config "$L/$3.toml" --sessions "$L/sessions" \
    --device "$1" --semantic "$2" 2>&1
done > "$OUT/loop.txt" 2>&1
# The real SmolLM2 file (on the machine now) on Iris's CUDA engine against its CPU engine.
timeout 100 env LD_LIBRARY_PATH="$G/lib" "$G/iris" bench llm "$L/home/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q8_0.gguf" \
  --device cuda --python none --runs 3 --tokens 32 --compare-cpu > "$OUT/smollm2.txt" 2>&1
cat "$OUT/asr.txt" "$OUT/loop.txt" "$OUT/smollm2.txt"
