#!/usr/bin/env bash
# Real photos for the vision tests: scikit-image's sample images (a photographed textbook page,
# handwriting, a cat, a cup of coffee, ...), taken from its wheel with pip; nothing is installed.
# Usage: deploy/sample-images.sh DIR
set -euo pipefail
dir=${1:?usage: deploy/sample-images.sh DIR}
if [ -f "$dir/.complete" ]; then exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 -d "$work" scikit-image==0.26.0 >&2 || {
    echo "error: cannot download the scikit-image wheel with pip; check the package index" >&2
    exit 1
}
tmp="$dir.part"
rm -rf "$tmp" && mkdir -p "$tmp"
python3 - "$work"/scikit_image-*.whl "$tmp" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
names = ["page.png", "text.png", "chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png", "horse.png"]
with zipfile.ZipFile(wheel) as z:
    for n in names:
        with open(f"{out}/{n}", "wb") as f:
            f.write(z.read(f"skimage/data/{n}"))
PY
rm -rf "$dir" && mv "$tmp" "$dir"
touch "$dir/.complete"
