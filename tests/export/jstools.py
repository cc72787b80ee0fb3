"""Running the JavaScript checks of tests/export/js (see that folder's package.json) from the tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

JS_DIR = Path(__file__).resolve().parent / "js"


def run_node(script: str, *args: str | os.PathLike, timeout: float = 120) -> dict:
    """Run one of tests/export/js/*.mjs and parse the JSON line it prints last."""
    out = subprocess.run(
        [shutil.which("node"), str(JS_DIR / script), *map(str, args)],
        capture_output=True, text=True, timeout=timeout, check=False, cwd=JS_DIR,
    )  # fmt: skip
    if out.returncode != 0:
        raise AssertionError(f"node {script} failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
