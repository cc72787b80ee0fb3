"""The import direction of docs/architecture.md: gaussians <- diffusion <- bake; gaussians <- runtime <- viewer;
gaussians <- export; only anchorsplat/ (the CLI) sees everything. Heavy optional dependencies are never imported
at module level of gaussians/, and the mesh tools (open3d, trimesh, xatlas) only in export/, lazily."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "gaussians": set(),
    "diffusion": {"gaussians"},
    "bake": {"gaussians", "diffusion"},
    "runtime": {"gaussians"},
    "viewer": {"gaussians", "runtime"},
    "export": {"gaussians"},
}
MESH_TOOLS = {"open3d", "trimesh", "xatlas"}
HEAVY = {"gsplat", "viser", "diffusers", "open3d", "mediapipe", "ray", "anny", "smplx", "transformers", "accelerate"}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at_module_level) for every import in a file; relative imports resolved to anchorsplat.X."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    package = path.parent.name
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append((f"anchorsplat.{package}", id(node) in top_level))
            elif node.module:
                found.append((node.module, id(node) in top_level))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_import_direction(package):
    for path in (ROOT / package).rglob("*.py"):
        for module, _ in _imports(path):
            parts = module.split(".")
            if parts[0] == "anchorsplat" and len(parts) > 1 and parts[1] in ALLOWED and parts[1] != package:
                assert parts[1] in ALLOWED[package], f"{path.relative_to(ROOT)} imports {module}"


def test_gaussians_imports_no_heavy_dependency_at_module_level():
    for path in (ROOT / "gaussians").rglob("*.py"):
        for module, top in _imports(path):
            if top:
                assert module.split(".")[0] not in HEAVY, f"{path.relative_to(ROOT)} imports {module} at module level"
            assert module.split(".")[0] not in {"viser", "diffusers"} | MESH_TOOLS, f"{path.name} imports {module}"


@pytest.mark.parametrize("package", sorted(set(ALLOWED) - {"export"}))
def test_mesh_tools_only_in_export(package):
    for path in (ROOT / package).rglob("*.py"):
        for module, _ in _imports(path):
            assert module.split(".")[0] not in MESH_TOOLS, f"{path.relative_to(ROOT)} imports {module}"


def test_export_imports_mesh_tools_lazily():
    for path in (ROOT / "export").rglob("*.py"):
        for module, top in _imports(path):
            if top:
                assert module.split(".")[0] not in MESH_TOOLS | HEAVY, f"{path.name} imports {module} at module level"
