#!/usr/bin/env bash
# The whole test suite: unit tests, stage harness with fakes, real-model conformance and
# end-to-end tests on the default pack. Same profile as the build, so nothing compiles twice.
source "$(dirname "$0")/common.sh"
setup
# The multilingual Whisper for the language tests, Qwen2.5 0.5B for the conversation-recall
# test, Gemma 3 270M for the gemma3 family, OpenVINO's execution provider, SmolLM2-135M and
# microWakeWord (none is in the default pack).
"$IRIS" models pull whisper-base qwen2.5-coder-0.5b-instruct gemma3-270m openvino-ep qnn-ep smollm2-135m-instruct microwakeword
# The tests that talk to the assistant run on SmolLM2-135M, about ten times faster than the
# default pack's model on two cores; the tests of the default itself clear this.
export IRIS_DEFAULT_LLM=smollm2-135m-instruct
# Real human speech with transcripts, real photos, and whisper.cpp to compare against (see README).
if "$ROOT/deploy/speech-corpus.sh" "$IRIS_DATA/speech-en" &&
    "$ROOT/deploy/speech-corpus.sh" "$IRIS_DATA/speech-fr" fr &&
    "$ROOT/deploy/speech-corpus.sh" "$IRIS_DATA/speech-es" es; then
    export IRIS_SPEECH_DIR="$IRIS_DATA/speech-en" IRIS_SPEECH_FR="$IRIS_DATA/speech-fr" IRIS_SPEECH_ES="$IRIS_DATA/speech-es"
else
    echo "warning: no human recordings; the recognition tests run on the synthetic sample only" >&2
fi
if "$ROOT/deploy/sample-images.sh" "$IRIS_DATA/images"; then
    export IRIS_IMAGES_DIR="$IRIS_DATA/images"
else
    echo "warning: no sample photos; the vision tests on photos are skipped" >&2
fi
client_tools
# A user-space PulseAudio room, so the live loop runs on real ALSA devices (deploy/pulse-room.sh).
pulse_packages=(pulseaudio pulseaudio-utils libasound2-plugins)
pulse_missing=()
for p in "${pulse_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || pulse_missing+=("$p")
done
if [ ${#pulse_missing[@]} -gt 0 ]; then
    say "installing ${pulse_missing[*]} (for the live loop's device test)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pulse_missing[@]}" >/dev/null
fi
# Spoken sessions for the live loop ("Hey Jarvis" and a question, in espeak-ng voices).
"$ROOT/deploy/loop-sessions.sh" "$IRIS_DATA/loop-sessions"
export IRIS_LOOP_SESSIONS="$IRIS_DATA/loop-sessions"
IRIS_LIVE_REFERENCE_PYTHON=$(reference_live)
[ -n "$IRIS_LIVE_REFERENCE_PYTHON" ] && export IRIS_LIVE_REFERENCE_PYTHON
IRIS_LLAMA_PYTHON=$(reference_llama)
[ -n "$IRIS_LLAMA_PYTHON" ] && export IRIS_LLAMA_PYTHON
IRIS_REFERENCE_PYTHON=$(reference_whisper_cpp)
[ -n "$IRIS_REFERENCE_PYTHON" ] && export IRIS_REFERENCE_PYTHON
# The Debian package and a clean Debian root to install it in (crates/iris/tests/package.rs).
package_test
say "running the test suite"
cargo test --release --locked --workspace "$@"
# The CPU engine on 64-bit ARM, under qemu-user: its NEON and sdot kernels against the
# plain-Rust reference, and greedy decoding of real files against llama.cpp's tokens; then the
# same on a Cortex-A72 (a Raspberry Pi 4: NEON without sdot).
if arm64_tools; then
    say "the CPU engine's tests on 64-bit ARM (qemu-user)"
    cargo test --release --locked --target aarch64-unknown-linux-gnu -p iris-llm-cpu "$@"
    QEMU_CPU=cortex-a72 cargo test --release --locked --target aarch64-unknown-linux-gnu -p iris-llm-cpu "$@"
    # The catalog's ONNX Runtime and TensorFlow Lite for 64-bit ARM, fetched beside this
    # machine's own, give x86-64's Silero probabilities and melspectrogram. qemu-user shows a
    # program the host's /proc/cpuinfo, on which ONNX Runtime's CPU probe (cpuinfo) crashes, so
    # qemu's path prefix lends it a Cortex-A76's.
    say "ONNX Runtime and TensorFlow Lite for 64-bit ARM (qemu-user)"
    "$IRIS" models pull --arch aarch64 onnxruntime tflite
    store="$(dirname "$IRIS_DATA")/models"
    arm_root="$(mktemp -d)"
    mkdir -p "$arm_root/proc"
    ln -s /usr/aarch64-linux-gnu/lib "$arm_root/lib"
    for cpu in 0 1; do
        printf 'processor\t: %d\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n' "$cpu"
    done >"$arm_root/proc/cpuinfo"
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $arm_root -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib" \
        IRIS_ORT_LIB="$store/onnxruntime.aarch64/libonnxruntime.so.1.31.1" IRIS_TFLITE_LIB="$store/tflite.aarch64/libtensorflowlite_c.so" \
        cargo test --release --locked --target aarch64-unknown-linux-gnu -p iris-silero -p iris-tflite --test runtime "$@"
    rm -rf "$arm_root"
else
    echo "warning: the 64-bit ARM tools could not be installed (apt-get, rustup target add): the CPU engine's ARM tests did not run" >&2
fi
