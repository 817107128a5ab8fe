#!/usr/bin/env bash
# Builds Iris for NVIDIA GPUs on a machine with no GPU and no CUDA install, from CUDA 13.0's pip
# wheels (../shared/GPU.md): `deploy/gpu-build.sh` gives target/cuda/release/iris (run it as
# target/cuda/release/iris-cuda, deploy/iris-cuda, which checks for NVIDIA's driver first) and
# a stripped copy, xz-compressed, in .gpu/iris.xz for deploy/gpu-bench.sh. Its own target
# directory (the flags differ from the CPU build's) and the `cuda` feature; the kernels are built for sm_90 (H100, H200) unless
# CUDA_COMPUTE_CAP says otherwise. Cold: about 20 minutes on 2 cores (candle's kernels).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${IRIS_SHARED:-../shared}
[ -d "${CUDA_WHEELS_DIR:-$HOME/.cache/cuda13-wheels}/venv" ] || { cargo fetch --locked; bash "$SHARED/gpu/setup-cuda-wheels.sh"; }
# shellcheck source=/dev/null
source "$SHARED/gpu/env-cuda.sh"
cargo build --release --locked --features cuda --target-dir target/cuda -p iris
# The launcher to run it by: on a machine without NVIDIA's driver it says so in one line.
cp deploy/iris-cuda target/cuda/release/iris-cuda
mkdir -p .gpu
# Compressed for the trip (the kernels' PTX is text): 59 MB stripped, 15 MB as xz.
strip -o .gpu/iris target/cuda/release/iris
xz -T2 -6 -f .gpu/iris
# The system libraries it links that the GPU machine's image lacks (espeak-ng, ALSA and theirs),
# found through the RUNPATH's $ORIGIN/lib; glibc and the C++ runtime are the machine's own.
mkdir -p .gpu/lib
ldd target/cuda/release/iris | awk '/=>/ {print $3}' | grep -v -E "/lib(c|m|gcc_s|stdc\+\+|pthread|dl|rt|gomp|cuda|cudart|cublas|cublasLt|curand)\.so|ld-linux|not" |
  xargs -r -I{} cp -L {} .gpu/lib/
ls -la .gpu/iris.xz && du -sh .gpu/lib
