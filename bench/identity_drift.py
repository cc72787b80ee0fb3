"""Identity and colour drift over chunk index for long anchored generations. Prints one JSON line.

Configurations: no anchors, content anchors only, and content + lookahead anchor at several distances D. Per
chunk of generated frames: colour drift = distance of the body-masked mean colour to the photo's, and identity
= dlib face-embedding distance to the photo (``bake/identity.py``; null where no face is detected). Reference
measured in the same run: the photo through the VAE alone (the floor any generation can reach).

The clip orbits the head and shoulders of the rig the model was trained on (``--rig``: the default Anny body,
or the synthetic rig of ``train_anchored_small.py --smoke``), so at 192 px and more dlib finds the face.

    python bench/identity_drift.py --rig synthetic               # CPU: tiny random model (plumbing + timing only)
    python bench/identity_drift.py --weights OUT/model --size 192 --frames 161    # a trained model (GPU)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from anchorsplat.bake.script import framing_points
from anchorsplat.diffusion.anchored import AnchoredConfig, load_anchored_generator
from anchorsplat.diffusion.generator import Anchors, ClipSpec, Subject
from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.conventions import framing_cameras
from anchorsplat.gaussians.io import load_rig
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.synthetic import synthetic_rig

ROOT = Path(__file__).resolve().parent.parent


def tiny_folder() -> Path:
    from diffusers import AutoencoderKLWan
    from diffusers.models.transformers.transformer_wan import WanTransformer3DModel

    from anchorsplat.diffusion.latents import tiny_vae_config
    from anchorsplat.diffusion.model import tiny_config

    root = Path(tempfile.mkdtemp(prefix="anchored_tiny_"))
    torch.manual_seed(0)
    cfg = {k: v for k, v in tiny_config().items() if k not in ("pose_channels", "audio_in_dim")}
    WanTransformer3DModel(**cfg).save_pretrained(root / "transformer")
    AutoencoderKLWan(**tiny_vae_config()).save_pretrained(root / "vae")
    return root


def photo_tensor(size: int) -> torch.Tensor:
    from PIL import Image

    img = Image.open(asset_path("sample", "astronaut.png")).convert("RGB").resize((size, size))
    return torch.from_numpy(np.asarray(img).copy()).float() / 255


def identity(frame: torch.Tensor, ref) -> float | None:
    from anchorsplat.bake.identity import face_embedding, identity_distance

    if ref is None:
        return None
    emb = face_embedding((frame.numpy() * 255).astype(np.uint8))
    return None if emb is None else identity_distance(emb, ref)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", type=Path, default=None, help="trained folder (default: tiny random model)")
    ap.add_argument("--frames", type=int, default=33)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=4, help="latent frames per chunk")
    ap.add_argument("--distances", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--rig", choices=["anny", "synthetic"], default="anny", help="the body the model was trained on")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from anchorsplat.bake.identity import face_embedding

    weights = args.weights or tiny_folder()
    base = AnchoredConfig(width=args.size, height=args.size, steps=args.steps, chunk=args.chunk, prefix=1, blend=1)
    gen = load_anchored_generator(weights, config=base)
    rig = synthetic_rig() if args.rig == "synthetic" else load_rig(asset_path("anny_default.rig.safetensors"))
    photo = photo_tensor(args.size)
    front = framing_cameras(rig.vertices_rest, torch.zeros(1), width=args.size, height=args.size)
    subject = Subject(photo, torch.ones(args.size, args.size), rig, Motion.zeros(1), front)
    head = framing_points(subject, portrait=True)
    cams = framing_cameras(head, torch.linspace(0, 360, args.frames), width=args.size, height=args.size)
    spec = ClipSpec("orbit", Motion.zeros(args.frames), cams)
    ref = face_embedding((photo.numpy() * 255).astype(np.uint8))
    from anchorsplat.diffusion.latents import decode_video

    floor = decode_video(gen.vae, gen.encode_image(photo))[0].cpu()
    photo_mean = photo.mean((0, 1))
    configs = {"none": dict(content_anchors=False, lookahead=None), "content": dict(lookahead=None)}
    configs.update({f"lookahead_{d}": dict(lookahead=d) for d in args.distances})
    frames_per_chunk = 4 * (args.chunk - 2)
    results, t0 = {}, time.perf_counter()
    for name, over in configs.items():
        g = type(gen)(gen.transformer, gen.vae, AnchoredConfig(**{**base.__dict__, **over}))
        clip = g.generate_clip(rig, spec, g.encode_anchors(Anchors(photo)))
        colour, ident = [], []
        for s in range(0, len(clip), frames_per_chunk):
            fr, m = clip.frames[s : s + frames_per_chunk], clip.masks[s : s + frames_per_chunk, ..., None]
            mean = (fr * m).sum((0, 1, 2)) / m.sum().clamp_min(1)
            colour.append(round(float((mean - photo_mean).norm()), 4))
            ident.append(identity(fr[len(fr) // 2], ref))
        results[name] = {"colour_drift_per_chunk": colour, "identity_per_chunk": ident,
                         "colour_drift_growth": round(colour[-1] - colour[0], 4)}  # fmt: skip
    out = {
        "bench": "identity_drift", "device": "cuda" if torch.cuda.is_available() else "cpu",
        "model": str(args.weights) if args.weights else "tiny-random", "frames": args.frames, "size": args.size,
        "steps": args.steps, "chunk_latents": args.chunk, "photo_face_found": ref is not None,
        "reference_vae_roundtrip_colour": round(float((floor.mean((0, 1)) - photo_mean).norm()), 4),
        "reference_vae_roundtrip_identity": identity(F.interpolate(floor.permute(2, 0, 1)[None], photo.shape[:2])[0]
                                                     .permute(1, 2, 0), ref),
        "configs": results, "seconds": round(time.perf_counter() - t0, 1), "python": platform.python_version(),
    }  # fmt: skip
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
