"""The bake report: one self-contained HTML file (inline SVG plots, base64 images), written atomically.

It shows the photo beside head-and-shoulders renders of the baked avatar at yaw 0, +-30, +-60 degrees with their
identity distances, a red warning when the score stage found faces in fewer than half of the generated frames,
the loss curve, held-out PSNR, the identity score over every generated frame, and a turntable strip of the baked
avatar beside the generated frames it was fitted to.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anchorsplat.gaussians.io import atomic_write_bytes


@dataclass
class ReportData:
    subject: str
    preset: str
    generator: str
    losses: list[float]
    gaussian_counts: list[int]
    heldout_psnr: float
    identity: list[tuple[str, int, float | None, float]]
    """(clip, frame, face distance or None, weight) per generated frame."""
    turntable: np.ndarray
    """K H W 3 uint8 renders of the baked avatar."""
    generated: np.ndarray
    """K H W 3 uint8 generated frames shown beside it."""
    photo: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    portraits: list = field(default_factory=list)
    """:class:`.score.PortraitScore` per yaw: the baked avatar's head and shoulders and its distance."""
    warning: str | None = None
    """Shown in red at the top (e.g. too few generated frames with a face)."""


def _png(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _polyline_svg(series: list[tuple[str, list[float], str]], *, width=640, height=220, log_y=False, y_label="") -> str:
    values = [v for _, ys, _ in series for v in ys if v is not None and math.isfinite(v)]
    if not values:
        return "<p>(no data)</p>"
    f = (lambda v: math.log10(max(v, 1e-8))) if log_y else (lambda v: v)
    lo, hi = min(map(f, values)), max(map(f, values))
    hi = hi if hi > lo else lo + 1
    n = max(len(ys) for _, ys, _ in series)
    pad = 40
    parts = [
        f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" font-size="11">',
        f'<rect x="{pad}" y="10" width="{width - pad - 10}" height="{height - pad - 10}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for name, ys, colour in series:
        points = []
        for i, v in enumerate(ys):
            if v is None or not math.isfinite(v):
                continue
            x = pad + (width - pad - 10) * i / max(n - 1, 1)
            y = 10 + (height - pad - 10) * (1 - (f(v) - lo) / (hi - lo))
            points.append(f"{x:.1f},{y:.1f}")
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(points)}"><title>{html.escape(name)}</title></polyline>'
        )
    top = 10**hi if log_y else hi
    bottom = 10**lo if log_y else lo
    parts.append(f'<text x="2" y="18">{top:.3g}</text><text x="2" y="{height - pad}">{bottom:.3g}</text>')
    parts.append(f'<text x="{pad}" y="{height - 12}">{html.escape(y_label)}</text></svg>')
    return "".join(parts)


def render_report(data: ReportData) -> str:
    distances = [d for _, _, d, _ in data.identity]
    weights = [w for _, _, _, w in data.identity]
    found = [d for d in distances if d is not None]
    dropped = sum(1 for w in weights if w == 0.0)
    identity_summary = (
        f"{len(found)} of {len(distances)} frames show a detectable face; mean distance {np.mean(found):.3f}, "
        f"max {np.max(found):.3f} (same person below 0.6); {dropped} frames dropped"
        if found
        else "no generated frame shows a face dlib can detect (profiles, backs or small faces): all keep weight 1"
    )
    strip = "".join(
        f'<figure><img src="{_png(a)}"><img src="{_png(b)}"></figure>'
        for a, b in zip(data.turntable, data.generated, strict=False)
    )
    timings = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.1f} s</td></tr>" for k, v in data.timings.items())
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in data.notes)
    warning = (
        f'<p class="warning" style="color:#c00;font-weight:bold">Warning: {html.escape(data.warning)}</p>'
        if data.warning
        else ""
    )
    portraits = "".join(
        f'<figure><img src="{_png(p.image)}" style="width:160px;height:160px"><figcaption>yaw {p.yaw_deg:+.0f}: '
        f"{_distance_html(p.distance)}</figcaption></figure>"
        for p in data.portraits
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>anchorsplat bake: {html.escape(data.subject)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;max-width:1100px}}figure{{display:inline-block;margin:2px}}
figure img{{display:block;width:96px;height:96px;image-rendering:auto}}td{{padding:2px 10px}}</style></head><body>
<h1>Bake report: {html.escape(data.subject)}</h1>
<table><tr><td>preset</td><td>{html.escape(data.preset)}</td></tr><tr><td>generator</td><td>{html.escape(data.generator)}</td></tr>
<tr><td>Gaussians</td><td>{data.gaussian_counts[-1] if data.gaussian_counts else 0}</td></tr>
<tr><td>held-out PSNR</td><td>{data.heldout_psnr:.2f} dB</td></tr>{timings}</table>
{warning}
<h2>Photo and the baked avatar (head and shoulders, yaw 0, +-30, +-60 degrees)</h2>
<div><figure><img src="{_png(data.photo)}" style="width:auto;height:160px"><figcaption>photo</figcaption></figure>
{portraits}</div><p>dlib face distance to the photo under each render (same person below 0.6; goal 0.45).</p>
<h2>Fit loss</h2>{_polyline_svg([("loss", data.losses, "#1f77b4")], log_y=True, y_label="step")}
<h2>Identity over generated frames</h2><p>{identity_summary}</p>
{_polyline_svg([("face distance", [d if d is not None else float("nan") for d in distances], "#d62728"), ("weight", weights, "#2ca02c")], y_label="frame (red: dlib distance to the photo, green: fit weight)")}
<h2>Turntable of the baked avatar (top) beside generated frames (bottom)</h2><div>{strip}</div>
<ul>{notes}</ul></body></html>"""


def _distance_html(distance: float | None) -> str:
    if distance is None:
        return '<span style="color:#c00">no face found</span>'
    colour = "#080" if distance <= 0.45 else ("#a60" if distance < 0.6 else "#c00")
    return f'<span style="color:{colour}">{distance:.3f}</span>'


def write_report(path: Path, data: ReportData) -> Path:
    atomic_write_bytes(Path(path), render_report(data).encode())
    return Path(path)
