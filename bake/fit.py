"""Stage 5: fit the triangle-bound Gaussians to every generated frame and the real photo.

Loss: (1 - l) * L1 + l * D-SSIM on colour over the background, + a mask term on alpha (stronger in the photo's views: a
silhouette term, the evidence of hair and clothes off the body), + light regularisers on normal offsets (outward beyond
a per-triangle allowance: the volume shell's; inward beyond the start's inset) and scales. Balanced sampling (from the
survey "Identity preservation in video diffusion"): each step uses the real photo with probability
``photo_probability``, otherwise a generated frame drawn in proportion to its identity weight. Densify and prune, a
simple CPU equivalent of gsplat's default strategy: every ``densify_every`` steps during the first 60% of the fit,
Gaussians whose opacity fell under 0.01 are removed and the 5% with the largest accumulated positional gradient are
split in two. The fit checkpoints atomically, with optimiser and random state, so a killed job resumes to the same
result. Views larger than ``window`` pixels (the 256 px face crop and face clip of the preview preset) are fitted on a
random window of that size per step, so a sharp face costs no more per step than a preview frame.

Device: the fit runs where its inputs are (``init``, the rig and the views; the bake moves them to the job's
device). Random decisions (which view, the split children's jitter) come from one generator on the host, so the
loop never waits on the GPU to choose and the checkpointed state is the same on every device. The loop reads
nothing back per step: the losses are gathered every ``log_every`` steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor, nn
from tqdm import tqdm

from anchorsplat.gaussians.conventions import Cameras, cropped_camera
from anchorsplat.gaussians.fileio import FileFormat, read_torch, write_torch
from anchorsplat.gaussians.render import render
from anchorsplat.gaussians.rig import Rig
from anchorsplat.gaussians.rigged import RiggedGaussians, pose_from_vertices

from .losses import psnr, ssim

CHECKPOINT_FILE = FileFormat(
    "anchorsplat.fit-checkpoint", 1, "fit checkpoint", "rerun the bake with --force fit (the fit starts over)"
)


@dataclass(frozen=True, eq=False)
class View:
    """One supervision image: what the avatar must look like for this body pose and camera."""

    image: Float[Tensor, "H W 3"]
    mask: Float[Tensor, "H W"]
    vertices: Float[Tensor, "V 3"]
    camera: Cameras
    weight: float = 1.0
    is_photo: bool = False


@dataclass(frozen=True)
class FitSettings:
    iterations: int = 500
    photo_probability: float = 0.25
    densify_every: int = 100
    checkpoint_every: int = 100
    lambda_dssim: float = 0.2
    lambda_mask: float = 0.1
    lambda_offset: float = 100.0
    """Weight of the squared normal offsets beyond where they may be (:func:`offset_excess`: outward past each
    triangle's allowance, 0 m without a volume shell; inward past the inset)."""
    lambda_silhouette: float = 0.5
    """Extra weight of the mask term in the photo's views: the photo's silhouette (hair and clothes included)
    is the only evidence of volume off the body."""
    max_scale: float = 0.03
    """Meters; larger Gaussians are pushed back (they blur motion)."""
    backend: str = "auto"
    """Rasterizer: ``"gsplat"`` (CUDA inputs), ``"torch"`` (any device), or ``"auto"``."""
    log_every: int = 25
    """Steps between reads of the losses back to the host (each read waits for the device)."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    seed: int = 0
    window: int | None = None
    """Side in pixels of the random window a larger view is fitted on in one step (None: whole views). A 256 px face
    view then costs what a ``window`` px frame costs and keeps its detail: each step sees another part of it."""


@dataclass
class FitResult:
    gaussians: RiggedGaussians
    losses: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)


class AvatarParams(nn.Module):
    """The optimised state: raw, unconstrained parameters of the rigged Gaussians."""

    def __init__(self, g: RiggedGaussians) -> None:
        super().__init__()
        self.register_buffer("face_ids", g.face_ids.clone())
        self.bary_logits = nn.Parameter(torch.log(g.barycentric.clamp_min(1e-4)).float())
        self.normal_offsets = nn.Parameter(g.normal_offsets.float().clone())
        self.quats = nn.Parameter(g.quats_canonical_wxyz.float().clone())
        self.log_scales = nn.Parameter(g.log_scales.float().clone())
        self.opacity_logits = nn.Parameter(g.opacity_logits.float().clone())
        self.sh_dc = nn.Parameter(g.sh_coeffs[:, :1].float().clone())
        self.sh_rest = nn.Parameter(g.sh_coeffs[:, 1:].float().clone())

    @classmethod
    def from_state(cls, state: dict[str, Tensor]) -> AvatarParams:
        """The exact raw parameters of a checkpoint (not re-derived from activated values)."""
        params = cls.__new__(cls)
        nn.Module.__init__(params)
        params.register_buffer("face_ids", state["face_ids"].clone())
        for name in ("bary_logits", "normal_offsets", "quats", "log_scales", "opacity_logits", "sh_dc", "sh_rest"):
            setattr(params, name, nn.Parameter(state[name].clone()))
        return params

    def gaussians(self) -> RiggedGaussians:
        return RiggedGaussians(
            self.face_ids, torch.softmax(self.bary_logits, dim=-1), self.normal_offsets, self.quats, self.log_scales,
            self.opacity_logits, torch.cat([self.sh_dc, self.sh_rest], dim=1),
        )  # fmt: skip

    def optimizer(self) -> torch.optim.Optimizer:
        groups = [
            (self.bary_logits, 1e-2), (self.normal_offsets, 1e-4), (self.quats, 2e-3), (self.log_scales, 5e-3),
            (self.opacity_logits, 5e-2), (self.sh_dc, 1e-2), (self.sh_rest, 5e-4),
        ]  # fmt: skip
        return torch.optim.Adam([{"params": [p], "lr": lr} for p, lr in groups], eps=1e-15)


def _detached(g: RiggedGaussians) -> RiggedGaussians:
    return RiggedGaussians(*(t.detach().clone() for t in (g.face_ids, g.barycentric, g.normal_offsets,
                                                           g.quats_canonical_wxyz, g.log_scales, g.opacity_logits,
                                                           g.sh_coeffs)))  # fmt: skip


def densify_and_prune(
    params: AvatarParams, grad_norm: Tensor, min_count: int, max_count: int, generator: torch.Generator | None = None
) -> AvatarParams:
    g = _detached(params.gaussians())
    n = len(g)
    device = g.opacity_logits.device
    keep = torch.sigmoid(g.opacity_logits) > 0.01
    if int(keep.sum()) < min_count:  # never prune below the floor: keep the most opaque
        keep = torch.zeros(n, dtype=torch.bool, device=device)
        keep[g.opacity_logits.topk(min_count).indices] = True
    budget = max(0, min(max_count - int(keep.sum()), int(0.05 * n)))
    score = torch.where(keep, grad_norm, torch.full_like(grad_norm, -1.0))
    split = score.topk(budget).indices if budget else torch.zeros(0, dtype=torch.long, device=device)
    split = split[score[split] > 0]
    base = g.subset(keep.nonzero()[:, 0])
    if len(split):
        children = g.subset(split)
        host = generator.device if generator is not None else "cpu"  # the checkpointed random state
        noise = torch.randn(len(split), 3, generator=generator, device=host).to(device) * 0.3
        bary = torch.softmax(torch.log(children.barycentric.clamp_min(1e-4)) + noise, dim=-1)
        smaller = children.log_scales - math.log(1.6)
        children = RiggedGaussians(children.face_ids, bary, children.normal_offsets, children.quats_canonical_wxyz,
                                   smaller, children.opacity_logits, children.sh_coeffs)  # fmt: skip
        # the parents shrink as well: together the two cover what the one did
        parents_in_base = torch.isin(keep.nonzero()[:, 0], split)
        log_scales = base.log_scales.clone()
        log_scales[parents_in_base] -= math.log(1.6)
        base = RiggedGaussians(base.face_ids, base.barycentric, base.normal_offsets, base.quats_canonical_wxyz,
                               log_scales, base.opacity_logits, base.sh_coeffs)  # fmt: skip
        base = _concat(base, children)
    return AvatarParams(base)


def _concat(a: RiggedGaussians, b: RiggedGaussians) -> RiggedGaussians:
    names = ("face_ids", "barycentric", "normal_offsets", "quats_canonical_wxyz", "log_scales", "opacity_logits",
             "sh_coeffs")  # fmt: skip
    return RiggedGaussians(*(torch.cat([getattr(a, k), getattr(b, k)]) for k in names))


def view_window(view: View, side: int, generator: torch.Generator) -> View:
    """A random ``side`` x ``side`` window of ``view`` (the whole view when it is no larger): the image, mask and
    the camera of that window. The window's corner comes from ``generator`` (host-side, checkpointed)."""
    height, width = view.image.shape[:2]
    w, h = min(side, width), min(side, height)
    if (w, h) == (width, height):
        return view
    x0 = int(torch.randint(width - w + 1, (), generator=generator, device=generator.device))
    y0 = int(torch.randint(height - h + 1, (), generator=generator, device=generator.device))
    camera = cropped_camera(view.camera, x0, y0, w, h)
    image, mask = view.image[y0 : y0 + h, x0 : x0 + w], view.mask[y0 : y0 + h, x0 : x0 + w]
    return View(image, mask, view.vertices, camera, view.weight, view.is_photo)


def render_view(params_or_g, rig: Rig, view: View, settings: FitSettings):
    g = params_or_g.gaussians() if isinstance(params_or_g, AvatarParams) else params_or_g
    posed = pose_from_vertices(g, rig, view.vertices[None])
    background = torch.tensor(settings.background, dtype=posed.means.dtype, device=posed.means.device)
    return posed, render(posed, view.camera, backend=settings.backend, background=background)


def offset_excess(params: AvatarParams, allowance: Float[Tensor, " F"] | None = None) -> Float[Tensor, " N"]:
    """Meters each Gaussian sits beyond where it may along its normal: outward past its triangle's ``allowance``
    (the volume shell's; 0 without one), inward past its inset (:func:`~anchorsplat.diffusion.volume.inset_depth`
    of its current scales). The fit starts the surface Gaussians at that inset so their soft edges end at the body's
    outline; a penalty on any inward offset pulled them back onto the skin within the first hundred steps (Adam
    follows a small steady gradient at full step size), and the unseen views' outlines grew fat again."""
    from anchorsplat.diffusion.volume import inset_depth

    outward = torch.zeros_like(params.normal_offsets) if allowance is None else allowance[params.face_ids]
    inward = inset_depth(params.log_scales.detach())
    return torch.relu(params.normal_offsets - outward) + torch.relu(-params.normal_offsets - inward)


def view_loss(
    out, view: View, settings: FitSettings, params: AvatarParams, allowance: Float[Tensor, " F"] | None = None
) -> Tensor:
    """The loss of one view (see the module docstring); ``allowance``: meters per rig triangle that Gaussians
    bound there may sit off the surface unpenalised (the volume shell's; None: none anywhere)."""
    background = torch.tensor(settings.background, dtype=view.image.dtype, device=view.image.device)
    target = view.image * view.mask[..., None] + background * (1 - view.mask[..., None])
    rgb = out.rgb[0]  # 1 H W 3
    l1 = (rgb - target[None]).abs().mean()
    d_ssim = 1 - ssim(rgb, target[None])
    mask = (out.alpha[0, 0, ..., 0] - view.mask).abs().mean()
    offsets = (offset_excess(params, allowance) ** 2).mean()
    scales = torch.relu(params.log_scales - math.log(settings.max_scale)).mean()
    photo = (1 - settings.lambda_dssim) * l1 + settings.lambda_dssim * d_ssim
    lambda_mask = settings.lambda_mask + (settings.lambda_silhouette if view.is_photo else 0.0)
    return view.weight * (photo + lambda_mask * mask) + settings.lambda_offset * offsets + scales


def _save_checkpoint(path: Path, params: AvatarParams, opt, iteration: int, result: FitResult, rng, acc) -> None:
    state = {
        "params": {k: v.detach().clone() for k, v in params.state_dict().items()}, "optimizer": opt.state_dict(),
        "iteration": iteration, "losses": result.losses, "counts": result.counts, "rng": rng.get_state(),
        "grad_acc": acc,
    }  # fmt: skip
    write_torch(path, CHECKPOINT_FILE, state)


def fit_avatar(
    rig: Rig,
    views: list[View],
    init: RiggedGaussians,
    settings: FitSettings,
    *,
    checkpoint: Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
    offset_allowance: Float[Tensor, " F"] | None = None,
) -> FitResult:
    """Optimise ``init`` on ``views`` (see the module docstring); resumes from ``checkpoint`` if it exists.
    ``offset_allowance`` (meters per rig triangle): how far Gaussians may leave the surface unpenalised there."""
    if not views:
        raise ValueError("no views to fit: every generated frame was dropped by the identity score")
    device = init.face_ids.device
    rng = torch.Generator(device="cpu").manual_seed(settings.seed)  # host-side: see the module docstring
    params, result, start = AvatarParams(init), FitResult(init), 0
    opt = params.optimizer()
    acc = torch.zeros(len(init), device=device)
    if checkpoint is not None and checkpoint.exists():
        state = read_torch(checkpoint, CHECKPOINT_FILE)  # loaded on the CPU: a checkpoint from any device
        params = AvatarParams.from_state(state["params"]).to(device)
        opt = params.optimizer()
        opt.load_state_dict(state["optimizer"])  # moves the moments to the parameters' device
        rng.set_state(state["rng"])
        start, acc = state["iteration"], state["grad_acc"].to(device)
        result.losses, result.counts = list(state["losses"]), list(state["counts"])
    photos = [v for v in views if v.is_photo]
    frames = [v for v in views if not v.is_photo]
    frame_weights = torch.tensor([max(v.weight, 1e-6) for v in frames], device=rng.device) if frames else None
    pending: list[Tensor] = []  # losses not yet read back
    min_count, max_count = len(init) // 2, len(init) * 2
    bar = tqdm(range(start, settings.iterations), desc="fit", initial=start, total=settings.iterations, leave=False)
    for it in bar:
        use_photo = photos and (
            not frames or float(torch.rand((), generator=rng, device=rng.device)) < settings.photo_probability
        )
        if use_photo:
            view = photos[int(torch.randint(len(photos), (), generator=rng, device=rng.device))]
        else:
            view = frames[int(torch.multinomial(frame_weights, 1, generator=rng))]
        if settings.window is not None:
            view = view_window(view, settings.window, rng)
        posed, out = render_view(params, rig, view, settings)
        posed.means.retain_grad()
        loss = view_loss(out, view, settings, params, offset_allowance)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc += posed.means.grad[0].norm(dim=-1).detach()
        pending.append(loss.detach())
        result.counts.append(len(params.face_ids))
        if on_step is not None:  # a caller that wants every step's loss pays a read-back per step
            on_step(it, float(loss.detach()))
        step = it + 1
        saving = checkpoint is not None and (step % settings.checkpoint_every == 0 or step == settings.iterations)
        if saving or step % settings.log_every == 0 or step == settings.iterations:
            result.losses.extend(torch.stack(pending).tolist())
            pending.clear()
        if step % settings.densify_every == 0 and step < 0.6 * settings.iterations:
            params = densify_and_prune(params, acc, min_count, max_count, rng)
            opt, acc = params.optimizer(), torch.zeros(len(params.face_ids), device=device)
        if saving:
            _save_checkpoint(checkpoint, params, opt, step, result, rng, acc)
    result.gaussians = _detached(params.gaussians())
    return result


def heldout_psnr(g: RiggedGaussians, rig: Rig, views: list[View], settings: FitSettings) -> float:
    """Mean PSNR of the avatar against held-out frames (views and poses the fit never saw)."""
    if not views:
        return float("nan")
    values = []
    with torch.no_grad():
        for view in views:
            _, out = render_view(g, rig, view, settings)
            background = torch.tensor(settings.background, dtype=view.image.dtype, device=view.image.device)
            target = view.image * view.mask[..., None] + background * (1 - view.mask[..., None])
            values.append(psnr(out.rgb[0, 0], target))
    return sum(values) / len(values)
