#!/usr/bin/env bash
# Builds the Debian package: target/debian/iris_VERSION_amd64.deb.
#
# The binary in it must run on any x86-64 machine, not only this one: whisper.cpp (built by
# whisper-rs) is compiled for the build machine's CPU unless told otherwise, and a package built
# here would die with an illegal instruction on a CPU without AVX-512 or AVX2. So the package's
# binary is built in its own target folder (target/deb) with ggml's CPU extensions off: the
# x86-64 baseline. The Rust code is built for the baseline anyway, and what needs speed picks its
# kernels at run time (Iris's LLM engine, candle's matrix products, ONNX Runtime).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
ARCH=amd64
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

say "building the baseline x86-64 binary (target/deb)"
CARGO_TARGET_DIR="$ROOT/target/deb" \
    GGML_NATIVE=OFF GGML_SSE42=OFF GGML_AVX=OFF GGML_AVX2=OFF GGML_BMI2=OFF GGML_FMA=OFF GGML_F16C=OFF \
    GGML_AVX512=OFF GGML_AVX_VNNI=OFF \
    cargo build --release --locked -p iris
BIN="$ROOT/target/deb/release/iris"

STAGE="$ROOT/target/deb/package"
rm -rf "$STAGE"
install -D -m 0755 "$BIN" "$STAGE/usr/bin/iris"
strip --strip-unneeded "$STAGE/usr/bin/iris"
install -D -m 0644 deploy/debian/iris.service "$STAGE/lib/systemd/system/iris.service"
install -D -m 0644 deploy/debian/default "$STAGE/etc/default/iris"
install -D -m 0644 deploy/debian/config.toml "$STAGE/usr/share/iris/config.toml"
install -D -m 0644 README.md "$STAGE/usr/share/doc/iris/README.md"
install -d "$STAGE/DEBIAN"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$STAGE/DEBIAN/"
echo "/etc/default/iris" > "$STAGE/DEBIAN/conffiles"
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: iris
Version: $VERSION
Architecture: $ARCH
Maintainer: Iris developers <iris@localhost>
Installed-Size: $SIZE
Depends: libc6 (>= 2.34), libstdc++6 (>= 12), libgcc-s1, libgomp1, libasound2 | libasound2t64, libespeak-ng1, adduser
Recommends: python3-pip
Section: sound
Priority: optional
Description: offline voice-and-vision assistant
 Iris listens for a wake word, hears the question with Whisper, answers with a small
 local language model and speaks with a neural voice, all on this machine, with no
 network once its models are installed. It reads text and names objects for a
 visually impaired user, serves a set-up panel over HTTPS, an OpenAI- and
 Ollama-compatible API and a Wyoming server for Home Assistant.
 .
 The service starts with no models; its panel fetches them, or installs an offline
 bundle made by "iris bundle create".
CONTROL
mkdir -p "$ROOT/target/debian"
OUT="$ROOT/target/debian/iris_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$OUT" >/dev/null
say "built $OUT ($(du -h "$OUT" | cut -f1))"
echo "$OUT"
