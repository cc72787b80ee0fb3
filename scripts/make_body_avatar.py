"""Builds assets/body.anchorsplat: the default Anny body as a Gaussian avatar with no subject baked in
(a clothed mannequin: skin, hair, shirt, trousers and shoes painted by body region), so render, play, view and
export have an avatar to work on before any bake.

    python scripts/make_body_avatar.py [--gaussians 30000] [--out assets/body.anchorsplat]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from anchorsplat.gaussians.assets import assets_dir
from anchorsplat.gaussians.io import Avatar, load_rig, save_avatar
from anchorsplat.gaussians.rig import Rig
from anchorsplat.gaussians.rigged import RiggedGaussians, bind_to_surface, rgb_to_sh_dc

ASSETS = assets_dir()
SKIN, HAIR = (0.80, 0.62, 0.52), (0.22, 0.15, 0.11)
SHIRT, TROUSERS, SHOES = (0.18, 0.45, 0.55), (0.16, 0.18, 0.28), (0.12, 0.12, 0.12)
REGIONS = (  # joint-name fragment -> colour, first match wins
    ("toe", SHOES), ("foot", SHOES), ("lowerleg", TROUSERS), ("upperleg", TROUSERS), ("pelvis", TROUSERS),
    ("root", TROUSERS), ("spine05", TROUSERS), ("finger", SKIN), ("metacarpal", SKIN), ("wrist", SKIN),
    ("lowerarm", SKIN), ("upperarm", SHIRT), ("shoulder", SHIRT), ("clavicle", SHIRT), ("spine", SHIRT),
    ("neck", SKIN), ("head", SKIN), ("eye", (0.95, 0.95, 0.95)),
)  # fmt: skip


def vertex_colours(rig: Rig) -> torch.Tensor:
    """Colour of each vertex from its dominant joint, plus hair on the upper back of the head."""
    dominant = rig.skin_indices.gather(1, rig.skin_weights.argmax(1, keepdim=True))[:, 0]
    joint_colour = torch.tensor([next((c for frag, c in REGIONS if frag in name), SKIN) for name in rig.joint_names])
    colours = joint_colour[dominant]
    head = rig.joints_rest[rig.joint_index("head")] if "head" in rig.joint_names else rig.vertices_rest.mean(0)
    v = rig.vertices_rest - head
    top = rig.vertices_rest[:, 1].max()
    is_hair = (rig.vertices_rest[:, 1] > top - 0.07) | ((v[:, 2] < 0.02) & (v[:, 1] > 0.0) & (v.norm(dim=-1) < 0.16))
    head_region = (rig.vertices_rest - head).norm(dim=-1) < 0.2
    colours[is_hair & head_region] = torch.tensor(HAIR)
    return colours


def body_avatar(rig: Rig, num_gaussians: int, seed: int = 0) -> Avatar:
    g = bind_to_surface(rig, num_gaussians, generator=torch.Generator().manual_seed(seed))
    colours = vertex_colours(rig)[rig.faces[g.face_ids]]  # N 3 corners 3
    rgb = (g.barycentric[..., None] * colours).sum(1)
    sh = rgb_to_sh_dc(rgb)[:, None, :]
    g = RiggedGaussians(g.face_ids, g.barycentric, g.normal_offsets, g.quats_canonical_wxyz, g.log_scales,
                        g.opacity_logits, sh)  # fmt: skip
    return Avatar(rig, g, {"source": "scripts/make_body_avatar.py", "subject": "default body (no subject baked)"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rig", type=Path, default=ASSETS / "anny_default.rig.safetensors")
    parser.add_argument("--gaussians", type=int, default=30000)
    parser.add_argument("--out", type=Path, default=ASSETS / "body.anchorsplat")
    args = parser.parse_args()
    path = save_avatar(args.out, body_avatar(load_rig(args.rig), args.gaussians))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
