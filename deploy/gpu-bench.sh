#!/usr/bin/env bash
# The language model on the GPU machine, side by side with llama.cpp built with CUDA there, in one
# call of the device tool (see ARCHITECTURE.md, "The GPU"). Everything it needs travels in .gpu/
# (ignored by git; 64 MiB per call):
#   .gpu/iris.xz       the CUDA build (deploy/gpu-build.sh), compressed
#   .gpu/llama.tar.xz  llama.cpp's source as vendored by the llama-cpp-python sdist, trimmed
#   .gpu/pylib/        llama-cpp-python's Python package (no libraries) and diskcache
# Model files are too large to travel: `iris bench synth` writes GGUFs of real shapes with random
# weights there (speed does not depend on the values). Results go to $OUT.
set -u
G=$(cd "$(dirname "$0")/.." && pwd)/.gpu
OUT=${OUT:-/tmp/gpu-out}
SHAPES=${SHAPES:-"qwen2-1.5b:q4_k_m llama-8b:q4_k_m llama-8b:q8_0 llama-3b:q4_k_m qwen2-1.5b:q8_0"}
DEADLINE=${DEADLINE:-560}
# REFERENCE=none skips llama.cpp (a quick check of Iris alone); COMPARE=all compares every
# shape's logits with Iris's CPU engine, not only the first's (or COMPARE="shape:quant ...").
REFERENCE=${REFERENCE:-llama.cpp}
COMPARE=${COMPARE:-first}
BUILD_DEADLINE=${BUILD_DEADLINE:-420}
export IRIS_HOME=/tmp/iris-home PATH=/usr/local/cuda/bin:$PATH PYTHONPATH=$G/pylib
mkdir -p "$OUT" "$IRIS_HOME" /tmp/m /tmp/lc
T0=$(date +%s)
# Python unpacks (the machine's image need not have xz).
python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$G/iris.xz" "$G/iris"
chmod +x "$G/iris"
# The carried system libraries (and theirs: a RUNPATH does not reach a library's own needs) for
# Iris only; llama.cpp's Python runs with the machine's own.
iris() { LD_LIBRARY_PATH="$G/lib" "$G/iris" "$@"; }
printf '#!/bin/sh\nunset LD_LIBRARY_PATH\nexec python3 "$@"\n' > "$G/python" && chmod +x "$G/python"
since() { echo $(($(date +%s) - T0)); }
{ nvidia-smi; nproc; free -g; LD_LIBRARY_PATH="$G/lib" ldd "$G/iris" | grep -E "cuda|cublas|curand|not found"; } > "$OUT/machine.txt" 2>&1

# 1. llama.cpp with CUDA for this GPU only (sm_90), in the background.
[ "$REFERENCE" = none ] || (
  python3 -c "import tarfile, sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$G/llama.tar.xz" /tmp/lc && cd /tmp/lc/llama.cpp &&
    cmake -B build -G "$(command -v ninja >/dev/null && echo Ninja || echo 'Unix Makefiles')" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DGGML_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=ON -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_APP=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF \
      -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF &&
    cmake --build build -j "$(nproc)"
) > "$OUT/llama-build.log" 2>&1 &
BUILD=$!
[ "$REFERENCE" = none ] && BUILD=0

# 2. The synthetic models, and a first run of Iris alone (does the CUDA build start at all?).
for s in $SHAPES; do
  iris bench synth "/tmp/m/${s%%:*}-${s##*:}.gguf" --shape "${s%%:*}" --quant "${s##*:}"
done > "$OUT/synth.txt" 2>&1
case $COMPARE in first) compared=${SHAPES%% *} ;; all) compared=$SHAPES ;; *) compared=$COMPARE ;; esac
for s in $compared; do
  echo "== $s ($(since) s)"
  timeout 150 env LD_LIBRARY_PATH="$G/lib" "$G/iris" bench llm "/tmp/m/${s%%:*}-${s##*:}.gguf" --device cuda --python none --runs 1 --tokens 16 \
    --compare-cpu 2>&1
done > "$OUT/iris-first.txt"
# Where a decode step's time goes (each launch timed alone), and candle's CUDA path on the same
# file, for comparison.
first=${SHAPES%% *}
IRIS_CUDA_PROFILE=1 IRIS_CUDA_GRAPHS=0 timeout 100 env LD_LIBRARY_PATH="$G/lib" "$G/iris" bench llm "/tmp/m/${first%%:*}-${first##*:}.gguf" \
  --device cuda --python none --runs 1 --tokens 32 > "$OUT/profile.txt" 2>&1
timeout 100 env LD_LIBRARY_PATH="$G/lib" "$G/iris" bench llm "/tmp/m/${first%%:*}-${first##*:}.gguf" --device cuda --engine candle \
  --python none --runs 3 --tokens 64 > "$OUT/candle.txt" 2>&1

# 3. Wait for llama.cpp (or give up at the deadline and measure Iris alone).
python=$G/python
[ "$REFERENCE" = none ] && python=none
while [ "$BUILD" != 0 ] && kill -0 $BUILD 2>/dev/null; do
  if [ "$(since)" -gt "$BUILD_DEADLINE" ]; then pkill -f "cmake --build"; pkill -f ninja; pkill -f nvcc; python=none; break; fi
  sleep 5
done
echo "llama.cpp build ended at $(since) s" >> "$OUT/llama-build.log"
if [ "$python" != none ]; then
  cp -a /tmp/lc/llama.cpp/build/bin/*.so* "$G/pylib/llama_cpp/lib/" 2>/dev/null
  python3 -c "import llama_cpp; assert llama_cpp.llama_supports_gpu_offload()" >> "$OUT/llama-build.log" 2>&1 || python=none
fi

# 4. Side by side, shape by shape.
for s in $SHAPES; do
  left=$((DEADLINE - $(since)))
  [ "$left" -gt 30 ] || { echo "== $s: no time left"; continue; }
  f="/tmp/m/${s%%:*}-${s##*:}.gguf"
  echo "== $s ($(since) s)"
  timeout "$left" env LD_LIBRARY_PATH="$G/lib" "$G/iris" bench llm "$f" --device cuda --python "$python" --runs 3 --tokens 64 2>&1
done > "$OUT/bench.txt"
echo "done at $(since) s" >> "$OUT/bench.txt"
