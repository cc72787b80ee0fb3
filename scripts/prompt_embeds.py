"""Write ``prompt_embeds.safetensors`` ("prompt" and "null", each max_length x text_dim) for the anchored generator
from a local text encoder (the ``text_encoder/`` + ``tokenizer/`` folders of a diffusers Wan model: UMT5-XXL; or any
local transformers text encoder whose width matches the transformer's ``text_dim``). Nothing is downloaded.

    python scripts/prompt_embeds.py --weights WAN_DIR                       # WAN_DIR/text_encoder -> WAN_DIR/...
    python scripts/prompt_embeds.py --weights OUT --text-encoder WAN_DIR/text_encoder --prompt "a person talking"
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_PROMPT = "a person facing the camera, studio light, plain background, sharp detailed face, natural skin"
DEFAULT_NEGATIVE = "blurry, distorted face, extra limbs, low quality, watermark, text"


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, required=True, help="the anchored generator's weights folder (output)")
    ap.add_argument("--text-encoder", type=Path, default=None, help="default: WEIGHTS/text_encoder")
    ap.add_argument("--tokenizer", type=Path, default=None, help="default: the text encoder's sibling tokenizer/")
    ap.add_argument("--prompt", default=DEFAULT_PROMPT)
    ap.add_argument("--negative-prompt", default=DEFAULT_NEGATIVE, help="the 'null' embedding (guidance > 1)")
    ap.add_argument("--max-length", type=int, default=512, help="tokens (Wan: 512)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from safetensors.torch import save

    from anchorsplat.diffusion.text import encode_prompts, load_text_encoder
    from anchorsplat.diffusion.weights import PROMPT_EMBEDS
    from anchorsplat.gaussians.io import atomic_write_bytes

    try:
        tokenizer, encoder = load_text_encoder(args.text_encoder or args.weights / "text_encoder", args.tokenizer)
    except ValueError as exc:
        print(f"anchorsplat: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    embeds = encode_prompts(tokenizer, encoder, [args.prompt, args.negative_prompt], args.max_length)
    out = args.weights / PROMPT_EMBEDS
    meta = {"prompt": args.prompt, "negative_prompt": args.negative_prompt}
    atomic_write_bytes(out, save({"prompt": embeds[0].contiguous(), "null": embeds[1].contiguous()}, metadata=meta))
    print(f"wrote {out} ({embeds.shape[1]} x {embeds.shape[2]})")
    return out


if __name__ == "__main__":
    main()
