"""``anchorsplat export``: an avatar as a rigged glTF binary, a static 3DGS PLY or SPZ, or a web player folder.

The exporters live in :mod:`anchorsplat.gaussians` and take a :class:`~anchorsplat.gaussians.motion.Motion`;
this module only resolves the command line: it loads the avatar, gets the motion from ``--motion`` or makes it
from ``--audio`` with the runtime's audio-to-motion (``gaussians`` must not import ``runtime``, the CLI may),
and calls the exporter for ``--format``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from anchorsplat.gaussians.io import Avatar, load_avatar
from anchorsplat.gaussians.motion import Motion, load_motion

if TYPE_CHECKING:
    from anchorsplat.configs import ExportConfig

SUFFIXES = {"glb": ".glb", "vrm": ".vrm", "obj": ".obj", "ply": ".ply", "spz": ".spz"}


def default_out(avatar_path: Path, fmt: str) -> Path:
    """``body.anchorsplat`` -> ``body.glb`` / ``.vrm`` / ``.obj`` / ``.ply`` / ``.spz`` / ``body_web/``."""
    if fmt == "web":
        return avatar_path.with_name(avatar_path.stem + "_web")
    return avatar_path.with_suffix(SUFFIXES[fmt])


def audio_motion(audio_path: Path, model: str = "auto", fps: float = 30.0) -> Motion:
    """Speech audio -> face and head :class:`Motion` with the runtime's causal audio-to-motion.

    ``model``: ``"learned"`` (the shipped weights), ``"baseline"`` (weight-free), or ``"auto"``: the learned
    model when its weights are installed, the baseline otherwise.
    """
    from anchorsplat.runtime.motion import audio_to_motion

    if not audio_path.is_file():
        raise ValueError(f"--audio {audio_path} does not exist")
    if model == "auto":
        from anchorsplat.runtime.learned import DEFAULT_MODEL_DIR

        weights = [DEFAULT_MODEL_DIR / "config.json", DEFAULT_MODEL_DIR / "model.safetensors"]
        model = "learned" if all(p.is_file() for p in weights) else "baseline"
    motion = audio_to_motion(str(audio_path), model, fps=fps)
    if len(motion) == 0:
        raise ValueError(f"--audio {audio_path} is too short to make any motion frame")
    return motion


def _motion(config: ExportConfig) -> Motion | None:
    if config.motion is not None and config.audio is not None:
        raise ValueError("give --motion or --audio, not both (the audio makes its own motion)")
    if config.motion is not None:
        return load_motion(config.motion)
    if config.audio is not None:
        from anchorsplat.commands import check_number

        check_number("--fps", config.fps, 1.0, 240.0)
        return audio_motion(config.audio, config.audio_model, config.fps)
    return None


def _posed_frame(avatar: Avatar, motion: Motion | None, frame: int):
    from anchorsplat.gaussians.rigged import canonical_posed, pose

    if motion is None:
        if frame != 0:
            raise ValueError("--frame needs --motion or --audio: without them the rest pose is exported")
        with torch.no_grad():
            return canonical_posed(avatar.gaussians, avatar.rig)
    if not -len(motion) <= frame < len(motion):
        raise ValueError(f"--frame {frame} is out of range: the motion has {len(motion)} frames")
    one = motion.frame(frame % len(motion)).to(dtype=avatar.rig.vertices_rest.dtype)
    with torch.no_grad():
        return pose(avatar.gaussians, avatar.rig, one)


def splats_path(out: Path) -> Path:
    """Where ``--splats include`` puts the splats beside the surface glb: ``body.glb`` -> ``body.splats.glb``."""
    return out.with_name(out.stem + ".splats.glb")


def _check(config: ExportConfig, out: Path) -> None:
    fmt = config.format
    if fmt in SUFFIXES and out.suffix.lower() != SUFFIXES[fmt]:
        raise ValueError(f"--out {out}: a --format {fmt} export must end in {SUFFIXES[fmt]}")
    if config.max_gaussians is not None and fmt not in ("glb", "vrm"):
        raise ValueError("--max-gaussians applies to --format glb and vrm (their splats file) only")
    if config.frame != 0 and fmt in ("glb", "web"):
        raise ValueError(f"--frame applies to obj, ply and spz; --format {fmt} stores the whole motion as an animation")
    if fmt in ("obj", "vrm") and config.splats == "only":
        raise ValueError(f"--splats only does not go with --format {fmt} (it holds a mesh): use --format ply or glb")
    if fmt == "vrm" and (config.motion is not None or config.audio is not None):
        raise ValueError("--format vrm stores no animation (apps drive VRM avatars live): drop --motion/--audio")
    if fmt in ("glb", "obj", "vrm") and config.splats != "only":
        _require_mesh_tools()
        from anchorsplat.export.surface import SurfaceOptions, check_options

        check_options(
            SurfaceOptions(config.max_triangles, config.texture_size, render_resolution=config.render_resolution)
        )
    if config.audio is not None and fmt == "web":
        from anchorsplat.gaussians.video import AUDIO_SUFFIXES

        if config.audio.suffix.lower() not in AUDIO_SUFFIXES:
            raise ValueError(f"--audio {config.audio}: browsers play {sorted(AUDIO_SUFFIXES)}; convert it first")
        if out.resolve() == config.audio.resolve().parent:
            raise ValueError("--out must not be the folder that holds the --audio file")


def _require_mesh_tools() -> None:
    import importlib.util

    missing = [m for m in ("open3d", "trimesh", "xatlas", "scipy") if importlib.util.find_spec(m) is None]
    if missing:
        raise ValueError(
            f"the surface export needs {', '.join(missing)}: pip install 'anchorsplat[export]' "
            "(or export the splats alone with --splats only)"
        )


def _surface(avatar: Avatar, config: ExportConfig):
    from anchorsplat.export.surface import StageTimes, SurfaceOptions, extract_surface

    _require_mesh_tools()

    options = SurfaceOptions(
        max_triangles=config.max_triangles,
        texture_size=config.texture_size,
        render_resolution=config.render_resolution,
        backend=config.backend,
    )
    times = StageTimes()
    surface = extract_surface(avatar, options, times)
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in times.seconds.items())
    print(f"surface: {surface.num_faces} triangles, {surface.num_vertices} vertices ({stages})")
    return surface


def _export_glb(avatar: Avatar, config: ExportConfig, out: Path, motion: Motion | None) -> list[Path]:
    from anchorsplat.gaussians.export_gltf import export_glb

    if config.splats == "only":
        return [export_glb(avatar, out, motion=motion, max_gaussians=config.max_gaussians)]
    surface = _surface(avatar, config)
    paths = [export_glb(avatar, out, motion=motion, surface=surface, splats=False)]
    if config.splats == "include":
        paths.append(export_glb(avatar, splats_path(out), motion=motion, max_gaussians=config.max_gaussians))
    return paths


def _export_obj(avatar: Avatar, config: ExportConfig, out: Path, motion: Motion | None) -> list[Path]:
    from anchorsplat.export.obj import posed_surface_vertices, write_obj

    posed = _posed_frame(avatar, motion, config.frame)  # checks --frame before the slow extraction
    surface = _surface(avatar, config)
    vertices = None
    if motion is not None:
        one = motion.frame(config.frame % len(motion)).to(dtype=avatar.rig.vertices_rest.dtype)
        vertices = posed_surface_vertices(surface, avatar.rig, one)
    paths = write_obj(out, surface, vertices)
    if config.splats == "include":
        from anchorsplat.gaussians.ply import save_ply

        paths.append(save_ply(out.with_suffix(".ply"), posed))
    return paths


def export_command(config: ExportConfig) -> Path:
    fmt = config.format
    out = config.out if config.out is not None else default_out(config.avatar, fmt)
    _check(config, out)
    avatar = load_avatar(config.avatar)
    if len(avatar.gaussians) == 0:
        raise ValueError(f"{config.avatar} has no Gaussians to export")
    motion = _motion(config)

    if fmt == "glb":
        paths = _export_glb(avatar, config, out, motion)
    elif fmt == "vrm":
        from anchorsplat.gaussians.export_gltf import export_glb
        from anchorsplat.gaussians.export_vrm import export_vrm, humanoid_bones

        humanoid_bones(avatar.rig)  # a rig without the humanoid bones fails before the slow extraction
        paths = [export_vrm(avatar, out, _surface(avatar, config), name=config.avatar.stem)]
        if config.splats == "include":
            paths.append(export_glb(avatar, splats_path(out), max_gaussians=config.max_gaussians))
    elif fmt == "obj":
        paths = _export_obj(avatar, config, out, motion)
    elif fmt == "web":
        from anchorsplat.gaussians.export_web import export_web

        title = config.title if config.title is not None else config.avatar.stem
        paths = [export_web(avatar, out, motion=motion, audio_path=config.audio, title=title)]
    else:
        posed = _posed_frame(avatar, motion, config.frame)
        if fmt == "ply":
            from anchorsplat.gaussians.ply import save_ply

            paths = [save_ply(out, posed)]
        else:
            from anchorsplat.gaussians.spz import save_spz

            paths = [save_spz(out, posed)]
    animated = motion is not None and fmt in ("glb", "web")
    animation = f", {len(motion)} animation frames" if animated else ""
    print(f"wrote {', '.join(str(p) for p in paths)} ({len(avatar.gaussians)} Gaussians{animation})")
    return paths[0]
