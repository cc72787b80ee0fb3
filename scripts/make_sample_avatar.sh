#!/usr/bin/env bash
# Regenerate assets/sample.anchorsplat: the bundled sample portrait baked with the preview preset.
#   bash scripts/make_sample_avatar.sh [JOB_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
job="${1:-build/sample_job}"
anchorsplat bake assets/sample/astronaut.png --preset preview --out "$job"
cp "$job/avatar.anchorsplat" assets/sample.anchorsplat.tmp && mv assets/sample.anchorsplat.tmp assets/sample.anchorsplat
echo "wrote assets/sample.anchorsplat from $job"
