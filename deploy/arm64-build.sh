#!/usr/bin/env bash
# Cross-builds Iris for 64-bit ARM boards (Raspberry Pi 5, RK3588, Jetson Orin) on an x86-64
# Debian machine: Rust's aarch64 target, Debian's cross compiler, and the arm64 builds of the
# C libraries Iris links (ALSA, espeak-ng) through Debian's multiarch. Gives
# target/aarch64-unknown-linux-gnu/release/iris; ONNX Runtime and TensorFlow Lite are loaded
# at run time from the model store (`iris models pull`), as on x86-64. Run the result here with
# `qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib
# target/aarch64-unknown-linux-gnu/release/iris doctor` (.cargo/config.toml says why).
source "$(dirname "$0")/common.sh"
check_rust
arm64_tools
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    say "adding Debian's arm64 architecture (for the C libraries' arm64 builds)"
    $sudo dpkg --add-architecture arm64
    $sudo apt-get update -qq
fi
missing=()
for p in libasound2-dev:arm64 libespeak-ng-dev:arm64; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--sysroot=/usr/aarch64-linux-gnu -I/usr/include"
say "building iris for aarch64 (cold: about 20 minutes on 2 cores)"
cargo build --release --locked --target aarch64-unknown-linux-gnu -p iris
ls -la target/aarch64-unknown-linux-gnu/release/iris
