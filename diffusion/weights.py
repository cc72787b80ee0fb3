"""The local weights folder of the anchored generator, checked before any work starts (reads JSON only: no
torch model is built, diffusers is not imported).

    WEIGHTS/transformer/config.json + *.safetensors    a Wan 2.1 / 2.2 transformer (stock or fine-tuned)
    WEIGHTS/vae/config.json + *.safetensors            AutoencoderKLWan
    WEIGHTS/prompt_embeds.safetensors                  optional: "prompt" (S x text_dim), optional "null"
                                                       (scripts/prompt_embeds.py writes it)
    WEIGHTS/image_encoder/ + image_processor/          I2V checkpoints (``image_dim`` set): a CLIP vision model
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

PROMPT_EMBEDS = "prompt_embeds.safetensors"


@dataclass(frozen=True)
class WeightsFolder:
    """A checked weights folder and the configs read from it."""

    root: Path
    transformer_config: dict
    vae_config: dict

    @property
    def is_i2v(self) -> bool:
        """An image-to-video backbone: noise + first-frame mask + first-frame latents as input channels."""
        return int(self.transformer_config.get("in_channels", 16)) > int(self.vae_config.get("z_dim", 16))

    @property
    def prompt_embeds(self) -> Path | None:
        path = self.root / PROMPT_EMBEDS
        return path if path.is_file() else None


def _config(root: Path, sub: str) -> dict:
    folder = root / sub
    config = folder / "config.json"
    if not config.is_file():
        raise ValueError(
            f"--weights {root}: no {sub}/config.json; point --weights at a local diffusers-format Wan folder "
            "(with transformer/ and vae/ subfolders)"
        )
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise ValueError(
            f"--weights {root}: {sub}/ has a config but no weights (*.safetensors); "
            "copy the model's weight files into it"
        )
    try:
        return json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        message = f"--weights {root}: {sub}/config.json is not valid JSON; copy it again from the model"
        raise ValueError(message) from None


def check_weights_folder(weights_dir: str | os.PathLike) -> WeightsFolder:
    """Check the folder's layout; a problem is a one-line ValueError saying what to fix."""
    root = Path(weights_dir).expanduser()
    if not root.is_dir():
        raise ValueError(f"--weights {root}: no such folder; give a local diffusers-format Wan model folder")
    folder = WeightsFolder(root, _config(root, "transformer"), _config(root, "vae"))
    if folder.is_i2v and folder.transformer_config.get("image_dim"):
        for sub in ("image_encoder", "image_processor"):
            if not (root / sub).is_dir():
                raise ValueError(
                    f"--weights {root}: an image-to-video model needs {sub}/ (the CLIP image encoder of the "
                    "diffusers Wan I2V folder); copy it next to transformer/"
                )
    return folder
