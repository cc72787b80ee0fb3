#!/usr/bin/env bash
# Build the wheel, install it NON-editable into a fresh virtual environment, and run the user commands from
# another directory on the files the wheel ships (the sample avatar and the sample speech), at a small size.
# The fresh environment borrows the dependencies of the python that runs this script (its site-packages as
# plain path entries: their .pth files, the editable install's finder among them, are not run), so the check
# downloads nothing but what building a wheel needs.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m pip wheel --no-deps -q -w "$work/dist" .
"$python" -m venv --without-pip "$work/venv"
site=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$python" -c 'import sys; print("\n".join(p for p in sys.path if p.endswith(("site-packages", "dist-packages"))))' \
    > "$site/borrowed-dependencies.pth"
"$work/venv/bin/python" -m pip install -q --no-deps --ignore-installed "$work"/dist/anchorsplat-*.whl

mkdir "$work/elsewhere" && cd "$work/elsewhere"

files=$("$work/venv/bin/python" -c '
import anchorsplat
from anchorsplat.gaussians.assets import asset_path, web_dir
print(anchorsplat.__file__, asset_path("sample.anchorsplat"), asset_path("sample_speech.flac"), web_dir())')
read -r package sample speech web <<< "$files"
for path in "$package" "$sample" "$speech" "$web"; do
    case "$path" in
        "$site"/*) ;;
        *) echo "check_wheel_install: $path is not inside the installed wheel ($site)" >&2; exit 1 ;;
    esac
done
"$work/venv/bin/anchorsplat" render "$sample" --out front.png --resolution 48
"$work/venv/bin/anchorsplat" play "$sample" --audio "$speech" --out talk.mp4 --resolution 48 --fps 4
"$work/venv/bin/python" -c '
import sys, av
from PIL import Image
assert Image.open("front.png").size == (48, 48)
with av.open("talk.mp4") as f:
    assert f.streams.video and f.streams.audio, "talk.mp4 lacks video or audio"
print("check_wheel_install: render and play from the installed wheel work")'
