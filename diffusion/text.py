"""Prompt embeddings from a local text encoder, as diffusers' Wan pipelines compute them (UMT5: tokens padded to
``max_length``, the encoder's last hidden state, positions past the prompt's own tokens set to zero).

The generator never loads the 11 GB UMT5-XXL at bake time: ``scripts/prompt_embeds.py`` runs this once and writes
``WEIGHTS/prompt_embeds.safetensors``, which ``load_anchored_generator`` loads when present.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor


def load_text_encoder(encoder_dir: str | os.PathLike, tokenizer_dir: str | os.PathLike | None = None):
    """(tokenizer, encoder) from local folders (UMT5 / T5 encoders, or any transformers model with a
    ``last_hidden_state``); nothing is downloaded."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer, T5EncoderModel, UMT5EncoderModel

    encoder_dir = Path(encoder_dir)
    tokenizer_dir = Path(tokenizer_dir) if tokenizer_dir is not None else encoder_dir.parent / "tokenizer"
    for folder, what in ((encoder_dir, "text encoder"), (tokenizer_dir, "tokenizer")):
        if not (folder / ("config.json" if what == "text encoder" else "tokenizer_config.json")).is_file():
            raise ValueError(f"{folder}: not a local {what} folder; give the text_encoder/ and tokenizer/ folders "
                             "of a diffusers Wan model (or any local transformers text encoder)")  # fmt: skip
    model_type = AutoConfig.from_pretrained(encoder_dir, local_files_only=True).model_type
    cls = {"umt5": UMT5EncoderModel, "t5": T5EncoderModel}.get(model_type, AutoModel)
    encoder = cls.from_pretrained(encoder_dir, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    return tokenizer, encoder


@torch.no_grad()
def encode_prompts(tokenizer, encoder, prompts: list[str], max_length: int = 512) -> Float[Tensor, "B S D"]:
    """Wan's prompt embeddings: ``max_length`` tokens each, zero past each prompt's own length."""
    prompts = [" ".join(p.split()) for p in prompts]  # the pipelines' whitespace clean-up
    tok = tokenizer(prompts, padding="max_length", max_length=max_length, truncation=True, add_special_tokens=True,
                    return_attention_mask=True, return_tensors="pt")  # fmt: skip
    device = next(encoder.parameters()).device
    hidden = encoder(tok.input_ids.to(device), attention_mask=tok.attention_mask.to(device)).last_hidden_state
    keep = tok.attention_mask.to(device).bool()[..., None]
    return torch.where(keep, hidden, torch.zeros_like(hidden)).float().cpu()
