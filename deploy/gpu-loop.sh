#!/usr/bin/env bash
# The live loop on the GPU machine (`iris bench loop --device cuda`): end of the user's speech →
# first audio out through the simulated room, Whisper and the language model on the GPU, the
# wake word, VAD, Smart Turn and Piper on its CPU; then the same sessions with everything on
# that machine's CPU, for comparison. Reads the parts deploy/gpu-loop-pack.sh made (already on
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
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc; } > "$OUT/machine.txt" 2>&1
for device in cuda cpu; do
  for semantic in false true; do
    echo "== --device $device --semantic $semantic"
    timeout 200 env LD_LIBRARY_PATH="$G/lib" "$G/iris" bench loop --config "$L/config.toml" --sessions "$L/sessions" \
      --device "$device" --semantic "$semantic" 2>&1
  done
done > "$OUT/loop.txt" 2>&1
# Once more on CUDA, for the spread between runs.
for run in 2 3; do
  echo "== run $run, --device cuda --semantic true"
  timeout 200 env LD_LIBRARY_PATH="$G/lib" "$G/iris" bench loop --config "$L/config.toml" --sessions "$L/sessions" \
    --device cuda --semantic true 2>&1
done >> "$OUT/loop.txt" 2>&1
cat "$OUT/loop.txt"
