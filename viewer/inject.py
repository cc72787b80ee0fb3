"""Scripts in a viser page: viser's HTML component inserts markup (``innerHTML``), which never runs ``<script>``
elements, so a script travels as inert text (``<script type="text/plain">``) with its data as JSON
(``<script type="application/json">``), and a broken image's ``onerror`` handler appends it to the document as a
real script. Setting the element's content again runs it again (each script stops its previous instance)."""

from __future__ import annotations

import html
import json
from pathlib import Path

BROKEN_IMAGE = "data:image/gif;base64,AA"


def _raw_text(text: str) -> str:
    if "</script" in text.lower():
        raise ValueError("script text must not contain '</script'")
    return text


def script_html(name: str, sources: list[str], data: dict[str, object]) -> str:
    """Markup that runs ``sources`` (in order) once inserted; ``data`` goes in JSON elements with the ids
    ``{name}-{key}`` (read them with ``JSON.parse(document.getElementById(id).textContent)``)."""
    parts = []
    for key, value in data.items():
        text = json.dumps(value).replace("<", "\\u003c")  # JSON never needs a raw "<"
        parts.append(f'<script type="application/json" id="{name}-{key}">{text}</script>')
    ids = [f"{name}-src-{i}" for i in range(len(sources))]
    parts += [f'<script type="text/plain" id="{i}">{_raw_text(s)}</script>' for i, s in zip(ids, sources, strict=True)]
    loader = "".join(
        f"(function(){{var d=document,s=d.createElement('script');s.text=d.getElementById('{i}').textContent;"
        "d.head.appendChild(s);})();"
        for i in ids
    )
    return "".join(parts) + run_html(loader)


def run_html(code: str) -> str:
    """Markup that runs one line of JavaScript once inserted."""
    return f'<img alt="" hidden src="{BROKEN_IMAGE}" onerror="{html.escape(code)}">'


def read_source(path: Path) -> str:
    return _raw_text(path.read_text(encoding="utf-8"))
