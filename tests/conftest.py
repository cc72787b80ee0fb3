"""Test session setup: offline, seeded, markers that skip what this machine cannot run."""

from __future__ import annotations

import os

import pytest
import torch
from jaxtyping import install_import_hook

# Shapes are part of the API: every jaxtyping annotation in anchorsplat is checked at runtime in tests.
install_import_hook("anchorsplat", "beartype.beartype")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# CLI commands run inside tests keep one thread count (no governor re-choosing it as the machine's load changes):
# their results then do not depend on what else runs beside the tests.
os.environ.setdefault("ANCHORSPLAT_THREADS", str(torch.get_num_threads()))


def _gsplat_usable() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        import gsplat  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return False
    return True


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA and gsplat")
    skip_smplx = pytest.mark.skip(reason="set SMPLX_MODEL_DIR to the real SMPL-X model files to run")
    gpu_ok = _gsplat_usable()
    for item in items:
        if "gpu" in item.keywords and not gpu_ok:
            item.add_marker(skip_gpu)
        if "needs_smplx_model" in item.keywords and not os.environ.get("SMPLX_MODEL_DIR"):
            item.add_marker(skip_smplx)
        if "needs_anny_build" in item.keywords and not os.environ.get("ANCHORSPLAT_ANNY_BUILD"):
            item.add_marker(
                pytest.mark.skip(reason="set ANCHORSPLAT_ANNY_BUILD=1 to build Anny (minutes on first use)")
            )


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
