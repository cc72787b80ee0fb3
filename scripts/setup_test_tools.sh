#!/usr/bin/env bash
# System tools the test suite uses besides Python packages: headless Chromium (export and viewer browser
# checks), espeak-ng (synthetic speech for the audio-to-motion tests), node + npm packages pinned in
# tests/export/js (Khronos glTF validator, three.js, Babylon.js, playwright-core), libusb-1.0-0 (open3d's wheel links
# it; the export surface uses open3d), blender (headless glTF import check; Debian bookworm's 3.4.1: 222 MB of
# packages, about a minute to download and install; its glTF importer uses the test venv's numpy). Idempotent;
# needs root or sudo for apt.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
APT=""
command -v chromium >/dev/null || APT="$APT chromium"
command -v espeak-ng >/dev/null || APT="$APT espeak-ng"
{ command -v node >/dev/null && command -v npm >/dev/null; } || APT="$APT nodejs npm"
{ ldconfig -p 2>/dev/null | grep -q "libusb-1.0.so.0"; } || APT="$APT libusb-1.0-0"
command -v blender >/dev/null || APT="$APT blender"
if [ -n "$APT" ]; then
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq $APT >/dev/null
fi
npm ci --prefix tests/export/js --no-audit --no-fund --loglevel=error
