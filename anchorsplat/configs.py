"""The CLI's configs: one frozen dataclass per subcommand, read by tyro (each field's docstring is its --help).

They live apart from ``cli.py`` so that the command modules can import them without importing the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

Device = Literal["auto", "cpu", "cuda"]
Backend = Literal["auto", "gsplat", "torch"]
View = Literal["front", "three-quarter", "left", "back", "right", "portrait"]


@dataclass(frozen=True)
class RenderConfig:
    """Render an avatar to an image (.png/.jpg) or a video (.mp4): a view, a motion, or a turntable."""

    avatar: tyro.conf.Positional[Path]
    """The avatar file (.anchorsplat)."""
    out: Path = Path("front.png")
    """Output: an image (.png, .jpg, .webp) or a video (.mp4, .mov, .mkv, .webm)."""
    view: View = "front"
    """Camera view around the body (it faces +Z; "left" looks at the body's left side); "portrait" frames the
    head and shoulders from the front, arms hanging unless --motion is given (the view to check a bake's face
    first)."""
    motion: Path | None = None
    """An SMPL-X-format motion .npz (AMASS 'poses'/'trans' or per-part keys). Images show --frame of it."""
    frame: int = 0
    """Which motion frame an image shows."""
    turntable: bool | None = None
    """Orbit the camera once around the avatar (default for a video without --motion)."""
    seconds: float = 4.0
    """Turntable length."""
    fps: float = 30.0
    """Turntable frame rate (a motion video uses the motion's own rate)."""
    resolution: int = 512
    """Image height in pixels (width equals height)."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Background colour, RGB in [0, 1]."""
    backend: Backend = "auto"
    """Rasterizer: gsplat on CUDA, the pure-torch renderer otherwise."""
    device: Device = "auto"


@dataclass(frozen=True)
class ExportConfig:
    """Export an avatar: glb (rigged glTF 2.0: the clothed, textured surface extracted from the splats, skinned to
    the skeleton with the expression morph targets, optional animation; the Gaussians as KHR_gaussian_splatting
    points in a second file NAME.splats.glb), vrm (the surface as a VRM 1.0 avatar), obj (the textured surface
    in one pose, for DCC tools), ply (standard 3DGS), spz (Niantic's compressed splats) or web (a self-contained
    folder that plays the avatar in a browser)."""

    avatar: tyro.conf.Positional[Path]
    """The avatar file (.anchorsplat)."""
    format: Literal["glb", "vrm", "obj", "ply", "spz", "web"] = "glb"
    """glb and web are rigged and animated; vrm is the surface as a VRM 1.0 avatar (humanoid bones, expression
    presets, look-at; no animation); obj, ply and spz are static (the rest pose or one --frame)."""
    out: Path | None = None
    """Output path (default: the avatar's name with the format's suffix; web: a folder NAME_web)."""
    splats: Literal["include", "only", "none"] = "include"
    """glb: include writes the surface to OUT and the splats beside it (OUT with .splats.glb), so engines show
    the surface and splat-capable ones can load the splats instead; only: the splats alone in OUT (no surface is
    extracted); none: the surface alone. vrm: include also writes OUT with .splats.glb. obj: include also writes
    the splats as OUT with .ply."""
    max_triangles: int = 30000
    """glb / vrm / obj: triangle budget of the extracted surface."""
    texture_size: int = 2048
    """glb / vrm / obj: width and height of the surface's colour texture (a power of two, at most 8192)."""
    motion: Path | None = None
    """An SMPL-X-format motion (.npz): glb and web store it as the animation; obj, ply and spz export its
    --frame."""
    audio: Path | None = None
    """Speech audio (wav/flac/mp3/ogg): the runtime's audio-to-motion makes the animation; web also plays it."""
    audio_model: Literal["auto", "learned", "baseline"] = "auto"
    """Audio-to-motion model: the shipped learned one, the weight-free baseline, or auto (learned if installed)."""
    fps: float = 30.0
    """Frame rate of the motion made from --audio."""
    frame: int = 0
    """Which motion frame an obj, ply or spz export shows."""
    max_gaussians: int | None = None
    """glb: keep at most this many Gaussians (the most opaque), for engines with splat budgets."""
    title: str | None = None
    """web: the page's title (default: the avatar's name)."""
    render_resolution: int = 384
    """glb / obj: width and height of the RGB-D renders (38 views) the surface and its texture come from."""
    backend: Backend = "auto"
    """glb / obj: rasterizer of the renders the surface is extracted from."""


@dataclass(frozen=True)
class BakeConfig:
    """Bake a photo into a rigged Gaussian avatar (the per-subject job): fit the body, generate synthetic clips,
    score identity, fit the Gaussians, write avatar.anchorsplat + report.html. Rerun to resume."""

    photo: tyro.conf.Positional[Path | None] = None
    """The subject's photo (png/jpg/webp): one person, head and shoulders or full body (default: the bundled
    sample, assets/sample/astronaut.png)."""
    out: Path = Path("job")
    """The job folder (created; an existing job with the same settings resumes)."""
    preset: Literal["preview", "standard", "full"] = "preview"
    """preview: minutes on a 2-core CPU; standard / full: GPU."""
    generator: Literal["proxy", "anchored"] = "proxy"
    """Synthetic clip generator: the weight-free photo-textured body proxy, or the anchored diffusion model."""
    weights: Path | None = None
    """Local diffusers-format model folder for --generator anchored."""
    refine_strength: float | None = None
    """--generator anchored: SDEdit-refine the proxy's renders at this strength in (0, 1] (1 = from pure noise)
    instead of generating from noise; keeps the proxy's layout, adds the model's detail."""
    subject_params: Path | None = None
    """A subject.json (from an earlier job) to use instead of detecting and fitting the person."""
    force: Literal["subject", "script", "generate", "score", "fit", "report"] | None = None
    """Rerun from this stage onward."""
    batch: Path | None = None
    """A folder of photos: bake each as a Ray task into OUT/<photo name>/."""
    ray_address: str | None = None
    """Ray cluster to run --batch on (default: a local Ray)."""
    backend: Backend = "auto"
    device: Device = "auto"
    """Where every stage runs: auto (CUDA when present), cpu or cuda. --batch reserves a GPU per task only when
    this is cuda, or auto on a machine with CUDA."""
    seed: int = 0
    export_dataset: bool = True
    """Also write the clips as a nerfstudio dataset (JOB/dataset/transforms.json)."""
    speech: Path | None = None
    """Speech that drives the talking clips (wav, flac, ogg, mp3, or any file FFmpeg reads; any rate/channels):
    the clips carry its audio and the face motion audio-to-motion makes from it (default: the shipped sample
    speech). Recorded in the job, so a resumed job uses the same."""
    person: int | None = None
    """In a photo of several people, bake this one (numbered 1, 2, ... left to right by face); by default the
    largest, most central person (the log and the report say which)."""


@dataclass(frozen=True)
class PlayConfig:
    """Play an avatar driven by speech (audio-to-motion) and/or an SMPL-X motion, to a video with the audio muxed in."""

    avatar: tyro.conf.Positional[Path]
    """The avatar file (.anchorsplat)."""
    audio: Path | None = None
    """Speech that drives the face and head (wav, flac, ogg, mp3, or any file FFmpeg reads; any rate/channels)."""
    out: Path = Path("talk.mp4")
    """Output video (.mp4, .mov, .mkv, .webm)."""
    motion: Path | None = None
    """An SMPL-X-format motion .npz for the body; with --audio the speech drives the face on top of it."""
    model: Literal["learned", "baseline"] = "learned"
    """Audio-to-motion: the shipped learned causal model, or the weight-free cue-based baseline."""
    model_dir: Path | None = None
    """A learned model folder (config.json + model.safetensors) to use instead of the shipped one."""
    references: tuple[Path, ...] = ()
    """Reference clips that personalise the face: motion .npz files (or folders of them), each with its speech
    next to it under the same name (clip.npz + clip.wav)."""
    lookahead_ms: float = 0.0
    """Audio the model may hear past each frame (0: strictly causal, the live setting)."""
    resolution: int = 512
    """Frame height in pixels (width equals height)."""
    fps: float = 30.0
    """Video frame rate."""
    view: Literal["front", "three-quarter", "left", "back", "right", "face"] = "front"
    """Camera: a whole-body view, or "face" (framed on the head)."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Background colour, RGB in [0, 1]."""
    head_motion: float = 1.0
    """Scales the audio-driven head and torso motion (0 keeps them still)."""
    seed: int = 0
    """Blink times and head-sway phases."""
    backend: Backend = "auto"
    """Rasterizer: gsplat on CUDA, the pure-torch renderer otherwise."""
    device: Device = "auto"
    threads: int | None = None
    """CPU threads for torch (default: torch's choice). On a CPU shared with other work, 1 is often far faster."""


@dataclass(frozen=True)
class ViewConfig:
    """Open an avatar in the viser web viewer: live, audio-driven playback in the browser (prints the URL)."""

    avatar: tyro.conf.Positional[Path]
    """The avatar file (.anchorsplat)."""
    audio: Path | None = None
    """Audio to load at start (wav, flac, ogg, mp3, ...); more can be uploaded in the browser."""
    motion: Path | None = None
    """An SMPL-X-format motion .npz to load at start (drives the body; audio drives the face on top)."""
    host: str = "127.0.0.1"
    """Address to bind. The viewer accepts uploads: bind 0.0.0.0 only on a trusted network."""
    port: int = 8080
    """Port to serve on (0: any free port)."""
    mode: Literal["server", "splats"] = "server"
    """Initial display: frames rendered here and streamed as JPEG, or Gaussians drawn by the browser."""
    fps: float = 30.0
    """Target frame rate; server rendering lowers its resolution to hold it."""
    max_resolution: int = 720
    """Tallest server-rendered frame, in pixels."""
    model: str = "learned"
    """Audio-to-motion model: "learned" (the baseline when its weights are not installed), "baseline", or a folder."""
    max_tabs: int = 8
    """Browser tabs served at once (each has its own audio, motion and model state); more get a message."""
    backend: Backend = "auto"
    device: Device = "auto"


Command = (
    Annotated[RenderConfig, tyro.conf.subcommand("render")]
    | Annotated[ExportConfig, tyro.conf.subcommand("export")]
    | Annotated[BakeConfig, tyro.conf.subcommand("bake")]
    | Annotated[PlayConfig, tyro.conf.subcommand("play")]
    | Annotated[ViewConfig, tyro.conf.subcommand("view")]
)
