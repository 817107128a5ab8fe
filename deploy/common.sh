# Shared by deploy/quickstart.sh and deploy/test.sh: install what is missing, build once.
# Idempotent: a second run installs nothing and rebuilds only what changed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
IRIS="$ROOT/target/release/iris"
# Test data and reference tools live beside the models, outside the checkout.
IRIS_DATA="${IRIS_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/iris}/data"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Debian packages Iris builds and runs with.
PACKAGES=(pkg-config cmake libclang-dev libasound2-dev libespeak-ng-dev espeak-ng-data espeak-ng
          python3 python3-pip python3-venv sox ca-certificates fonts-dejavu-core)

install_system_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    # A Python with pip counts even if Debian's python3-pip is absent (e.g. a pyenv Python).
    if python3 -m pip --version >/dev/null 2>&1; then
        missing=("${missing[@]/python3-pip}")
    fi
    missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing Debian packages: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# 64-bit ARM: Rust's target, Debian's cross compiler and qemu-user to run what it builds here
# (.cargo/config.toml names both for the aarch64 target).
arm64_tools() {
    local missing=()
    for p in gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} (to build and run for 64-bit ARM)"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq || return 1
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || return 1
    fi
    rustup target list --installed | grep -q '^aarch64-unknown-linux-gnu$' || rustup target add aarch64-unknown-linux-gnu || return 1
}

check_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: Rust is not installed; install it with rustup (Rust 1.85 or newer), then run this again" >&2
        exit 1
    fi
}

build_iris() {
    say "building iris (release; the first build takes about 15 minutes on 2 cores)"
    cargo build --release --locked -p iris
}

pull_default_pack() {
    say "fetching the default model pack (checked by sha256)"
    "$IRIS" models pull default
}

# whisper.cpp for the comparisons in `iris eval asr --reference` and `iris bench asr`: the
# pywhispercpp package compiled from source (a few minutes, once), so it uses this CPU's
# instructions as Iris's own whisper.cpp does. Prints the Python to use.
reference_whisper_cpp() {
    local venv="$IRIS_DATA/reference/whisper-cpp"
    if ! "$venv/bin/python" -c "import pywhispercpp, numpy" >/dev/null 2>&1; then
        say "building the reference whisper.cpp (pywhispercpp from source; once)"
        rm -rf "$venv"
        python3 -m venv "$venv" >&2 &&
            "$venv/bin/python" -m pip install -q numpy >&2 &&
            "$venv/bin/python" -m pip install -q --no-binary pywhispercpp pywhispercpp==1.5.1 >&2 || {
            echo "warning: could not build the reference whisper.cpp; the comparison tests will say so" >&2
            rm -rf "$venv"
            return 0
        }
    fi
    echo "$venv/bin/python"
}

# llama.cpp's OpenAI-compatible server, from pip `llama-cpp-python[server]` compiled here (a few
# minutes, once): the server the `[llm_server]` test answers from, and the reference of
# `iris bench llm --python`. Prints the Python to use.
reference_llama() {
    local venv="$IRIS_DATA/reference/llama"
    # Built without Intel's AMX: on a Sapphire Rapids VM (2026-12-03) llama.cpp's AMX matrix
    # product (ggml_backend_amx_mul_mat) died with SIGSEGV on SmolLM2's Q8_0 and Q4_1 files
    # and on the 1.5B shape's Q4_K_M. GCC's explicit -mno-amx-* win over -march=native.
    local no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    if ! "$venv/bin/python" -c "import llama_cpp.server.app, llama_cpp; assert b'AMX_INT8 = 1' not in llama_cpp.llama_print_system_info()" >/dev/null 2>&1; then
        say "building llama.cpp's server (llama-cpp-python, once; a few minutes)"
        [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
        CMAKE_ARGS="-DCMAKE_C_FLAGS='$no_amx' -DCMAKE_CXX_FLAGS='$no_amx'" \
            "$venv/bin/python" -m pip install -q --no-cache-dir --force-reinstall "llama-cpp-python[server]==0.3.36" >&2 || {
            echo "warning: could not build llama-cpp-python; the language-model server test will fail" >&2
            return 0
        }
    fi
    echo "$venv/bin/python"
}

# The references for the live loop's models: openWakeWord (the pip package's own streaming
# pipeline) and Smart Turn (pipecat's features and model), on the same ONNX Runtime version, and
# Google's TensorFlow Lite interpreter (ai-edge-litert) for the .tflite wake words.
# Prints the Python to use.
reference_live() {
    local venv="$IRIS_DATA/reference/live"
    if ! "$venv/bin/python" -c "import numpy, onnxruntime, importlib.util as u; assert u.find_spec('openwakeword') and u.find_spec('pipecat')" >/dev/null 2>&1; then
        say "installing the reference openwakeword and pipecat (once)"
        rm -rf "$venv"
        python3 -m venv "$venv" >&2 &&
            "$venv/bin/python" -m pip install -q numpy onnxruntime==1.31.1 >&2 &&
            "$venv/bin/python" -m pip install -q --no-deps openwakeword==0.4.0 pipecat-ai==1.14.0 >&2 || {
            echo "warning: could not install the references; the wake word and end-of-turn conformance tests will fail" >&2
            rm -rf "$venv"
            return 0
        }
    fi
    if ! "$venv/bin/python" -c "import pymicro_wakeword, pymicro_features" >/dev/null 2>&1; then
        "$venv/bin/python" -m pip install -q --no-deps pymicro-wakeword==2.5.0 pymicro-features==2.0.2 >&2 ||
            echo "warning: could not install pymicro-wakeword; the microWakeWord conformance test will fail" >&2
    fi
    if ! "$venv/bin/python" -c "import ai_edge_litert.interpreter" >/dev/null 2>&1; then
        "$venv/bin/python" -m pip install -q --no-deps ai-edge-litert==2.1.4 >&2 ||
            echo "warning: could not install ai-edge-litert; the TFLite wake word conformance test will fail" >&2
    fi
    echo "$venv/bin/python"
}

# Test-only clients of `iris serve`: the openai, wyoming and ollama Python packages, and a headless
# Chromium driven by playwright-core with the axe-core accessibility audit. Exports
# IRIS_CLIENT_PYTHON and IRIS_BROWSER_MODULES for the tests; a failure is a warning.
client_tools() {
    local venv="$IRIS_DATA/reference/clients" npm_dir="$IRIS_DATA/reference/browser"
    if ! "$venv/bin/python" -c "import openai, wyoming, ollama" >/dev/null 2>&1; then
        say "installing the openai, wyoming and ollama Python clients (for the API tests)"
        rm -rf "$venv"
        python3 -m venv "$venv" >&2 && "$venv/bin/python" -m pip install -q openai==3.54.0 wyoming==1.10.2 ollama==0.6.3 >&2 ||
            { echo "warning: could not install the Python clients; the real-client test is skipped" >&2; rm -rf "$venv"; }
    fi
    [ -x "$venv/bin/python" ] && export IRIS_CLIENT_PYTHON="$venv/bin/python"

    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    for p in chromium nodejs; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && ! command -v "${p/nodejs/node}" >/dev/null; then
            say "installing $p (for the browser tests)"
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$p" >/dev/null ||
                echo "warning: could not install $p" >&2
        fi
    done
    if [ ! -f "$npm_dir/node_modules/playwright-core/package.json" ] || [ ! -f "$npm_dir/node_modules/axe-core/axe.min.js" ]; then
        say "installing playwright-core and axe-core (for the browser tests)"
        mkdir -p "$npm_dir"
        (cd "$npm_dir" && echo '{"private":true}' > package.json &&
            npm install --silent --no-audit --no-fund playwright-core@1.65.1 axe-core@4.14.1 >&2) ||
            echo "warning: could not install playwright-core; the browser test is skipped" >&2
    fi
    if [ -f "$npm_dir/node_modules/playwright-core/package.json" ] && command -v chromium >/dev/null && command -v node >/dev/null; then
        export IRIS_BROWSER_MODULES="$npm_dir/node_modules"
    fi
}

# For the package test: Debian's tools to bootstrap, boot and emulate, a bootstrapped Debian
# root with systemd (kept, never changed by the tests: they copy it) whose apt cache already
# holds the package's dependencies, and the package itself (deploy/deb.sh). Exports
# IRIS_DEBIAN_ROOT and IRIS_DEB.
package_test() {
    local sudo="" missing=()
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    for p in debootstrap systemd-container qemu-user; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} (for the package test)"
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    local root="$IRIS_DATA/debian-root"
    if [ ! -f "$root.ready" ]; then
        say "bootstrapping a clean Debian root for the package test (about 300 MB)"
        rm -rf "$root"
        # The mirror this machine's own apt uses.
        local mirror
        mirror=$(grep -h -m1 '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | awk '{print $2}')
        [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
        $sudo debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,adduser bookworm "$root" "$mirror" >&2
        DEBIAN_FRONTEND=noninteractive $sudo chroot "$root" apt-get install -y -qq --download-only --no-install-recommends \
            libasound2 libespeak-ng1 libgomp1 libstdc++6 libgcc-s1 >&2
        touch "$root.ready"
    fi
    export IRIS_DEBIAN_ROOT="$root"
    IRIS_DEB=$("$ROOT/deploy/deb.sh" | tail -1)
    export IRIS_DEB
}

setup() {
    install_system_packages
    check_rust
    build_iris
    pull_default_pack
}
