"""Reading a photo: any image file Pillow reads -> an upright ``uint8 H W 3`` RGB array, checked for size.

The one home of photo loading and image checks for the bake (detection, identity and the pipeline import it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from jaxtyping import UInt8

MIN_SHORT_SIDE = 128
MAX_LONG_SIDE = 1024

Box = tuple[int | float, int | float, int | float, int | float]
"""left, top, right, bottom in pixels."""


def load_photo(path: str | Path, *, max_long_side: int = MAX_LONG_SIDE) -> UInt8[np.ndarray, "H W 3"]:
    """Read a photo as upright 8-bit RGB: EXIF orientation applied, grayscale/palette/16-bit/float converted,
    transparency composited onto white, downscaled so the long side is at most ``max_long_side``.

    Raises:
        ValueError: a missing file, a file that is not an image, a truncated image, or one under 128 px.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    hint = "pass a JPEG or PNG photo of one person"
    if not path.is_file():
        raise ValueError(f"photo {path} does not exist: {hint}")
    try:
        with Image.open(path) as img:
            img.draft("RGB", (max_long_side, max_long_side))  # JPEG: decode at a reduced scale directly
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb8(img)
    except UnidentifiedImageError:
        raise ValueError(f"photo {path} is not an image Pillow can read: {hint}") from None
    except Image.DecompressionBombError as exc:
        raise ValueError(f"photo {path} is too large to decode safely ({exc}): downscale it first") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"photo {path} is truncated or corrupt ({exc}): re-export or re-download it") from None
    h, w = rgb.shape[:2]
    if max(h, w) > max_long_side:
        scale = max_long_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))
    check_image(rgb, what=f"photo {path}")
    return np.ascontiguousarray(rgb)


def _to_rgb8(img) -> np.ndarray:
    """Any Pillow mode -> uint8 RGB; high-bit-depth modes are rescaled, not clipped."""
    from PIL import Image

    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or values.max() > 255 else 255.0
        if img.mode == "F":
            top = max(float(values.max()), 1.0) if values.max() > 1.0 else 1.0
        gray = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


def check_rgb8(image: np.ndarray, *, what: str = "image") -> None:
    """Raise a TypeError unless ``image`` is a uint8 H x W x 3 array."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise TypeError(f"{what} must be a uint8 H x W x 3 RGB array, got a {desc}: read files with load_photo")


def check_image(image: np.ndarray, *, what: str = "image") -> None:
    """Raise a one-line error unless ``image`` is a usable uint8 H x W x 3 photo of at least 128 px."""
    check_rgb8(image, what=what)
    h, w = image.shape[:2]
    if min(h, w) < MIN_SHORT_SIDE:
        raise ValueError(
            f"{what} is too small ({w} x {h} px): the person detector needs at least {MIN_SHORT_SIDE} px on the "
            "short side; use a larger photo"
        )
