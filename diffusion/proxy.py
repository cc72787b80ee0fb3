"""ProxyGenerator: the weight-free default generator.

It textures the fitted body with the photo and renders it along the clip script:
1. dense Gaussians are bound to the fitted rig's surface and posed as in the photo;
2. they are coloured by :func:`.texture.photo_texture`: only Gaussians the photo sees (facing the camera, not
   occluded, on pixels of the person that their body part may take colour from) take the photo's colour;
   the others are completed from their mirror image or the nearest seen Gaussians of the same body part;
3. where the photo's silhouette shows hair or loose clothing beyond the body, a shell of Gaussians off the
   surface carries it (:func:`.volume.volume_shell`; ``volume_gaussians`` > 0), except in front of the face
   (:func:`.volume.in_front_of_face`): hair measured beside the cheeks in the photo stands off the cheek along its
   normal, and seen from the side (or with the head turned) that flap hid the face; the shell behind the face
   keeps it (the fit's starting shell is cleared the same way);
4. the textured proxy is posed and rendered frame by frame with each frame's camera; frames smaller than
   :attr:`ProxyConfig.supersample_below` pixels are rendered at an integer multiple of their size and
   area-averaged down (:func:`supersampled_render`), as a camera's pixel integrates the light over its area: a
   point-sampled 128 px frame aliases the face's small Gaussians into speckle that neither dlib nor the fit can
   read (on the sample, dlib's frontal detector found the face in 8 and 4 of the 12 frames of the preview's talk
   and head clips; 11 and 9 with supersampling and the denser face).
Every frame therefore has exactly the body parameters and camera of the script.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor
from tqdm import tqdm

from anchorsplat.gaussians.conventions import Cameras
from anchorsplat.gaussians.render import render
from anchorsplat.gaussians.rigged import RiggedGaussians, bind_to_surface, pose, rgb_to_sh_dc

from .generator import Anchors, Clip, ClipSpec, Subject
from .texture import head_density, photo_texture
from .volume import volume_shell, with_shell


@dataclass(frozen=True)
class ProxyConfig:
    num_gaussians: int = 60000
    """Gaussians on the textured proxy (more = sharper texture, slower)."""
    depth_tolerance: float = 0.03
    """Meters a Gaussian may lie behind the rendered depth and still count as visible."""
    neighbours: int = 8
    """Visible neighbours averaged to colour a hidden Gaussian."""
    head_density: float = 4.0
    """Gaussian density on the head and neck relative to the body: the face carries the identity."""
    volume_gaussians: int = 0
    """At most this many extra Gaussians in a hair/clothing shell off the body (see :mod:`.volume`); 0: none."""
    supersample_below: int = 256
    """Frames whose long side is under this many pixels are rendered at ``ceil(supersample_below / side)`` times
    their size (at most 4) and area-averaged down; 0 turns supersampling off."""
    backend: str = "auto"
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    seed: int = 0


class ProxyGenerator:
    name = "proxy"

    def __init__(self, config: ProxyConfig = ProxyConfig()) -> None:
        self.config = config
        self._textured: tuple[Subject, RiggedGaussians] | None = None
        """The last subject's textured proxy: the bake generates one clip per call (so a restart keeps the clips
        already made), and texturing 120k Gaussians and their shell costs more than rendering a clip."""

    def textured(self, subject: Subject) -> RiggedGaussians:
        """:meth:`texture` of ``subject``, made once for the same subject object."""
        if self._textured is None or self._textured[0] is not subject:
            self._textured = (subject, self.texture(subject))
        return self._textured[1]

    def texture(self, subject: Subject) -> RiggedGaussians:
        """Dense Gaussians on the subject's body, coloured from the photo (see the module docstring)."""
        cfg = self.config
        rig = subject.rig
        g = bind_to_surface(rig, cfg.num_gaussians, generator=torch.Generator().manual_seed(cfg.seed),
                            face_density=head_density(rig, cfg.head_density))  # fmt: skip
        texture = photo_texture(g, subject, depth_tolerance=cfg.depth_tolerance, backend=cfg.backend,
                                neighbours=cfg.neighbours)  # fmt: skip
        sh = rgb_to_sh_dc(texture.colours)[:, None, :]
        proxy = RiggedGaussians(
            g.face_ids, g.barycentric, g.normal_offsets, g.quats_canonical_wxyz, g.log_scales,
            torch.full_like(g.opacity_logits, 4.0), sh,
        )  # fmt: skip
        if cfg.volume_gaussians <= 0:
            return proxy
        shell = volume_shell(subject, cfg.volume_gaussians, seed=cfg.seed, backend=cfg.backend).gaussians
        opaque = torch.full_like(shell.opacity_logits, 4.0)
        return with_shell(proxy, dataclasses.replace(shell, opacity_logits=opaque))

    def generate(self, subject: Subject, script: list[ClipSpec], anchors: Anchors) -> list[Clip]:
        proxy = self.textured(subject)
        background = torch.tensor(self.config.background, device=subject.photo.device)
        clips = []
        for spec in script:
            frames, masks = [], []
            factor = supersample_factor(spec.cameras, self.config.supersample_below)
            with torch.no_grad():
                for t in tqdm(range(len(spec.motion)), desc=f"proxy {spec.name}", leave=False, unit="frame"):
                    posed = pose(proxy, subject.rig, spec.motion.frame(t))
                    rgb, alpha = supersampled_render(posed, spec.cameras[t], background, factor=factor,
                                                     backend=self.config.backend)  # fmt: skip
                    frames.append(rgb.clamp(0, 1))
                    masks.append(alpha)
            clips.append(Clip(spec.name, torch.stack(frames), torch.stack(masks), spec.motion, spec.cameras))
        return clips


def supersample_factor(cameras: Cameras, below: int) -> int:
    """The integer factor that brings frames of ``cameras`` to at least ``below`` pixels on their long side
    (1 when they already are or ``below`` is 0; at most 4)."""
    side = max(cameras.width, cameras.height)
    if below <= 0 or side >= below:
        return 1
    return min(4, math.ceil(below / side))


def supersampled_render(
    gaussians, camera: Cameras, background: Float[Tensor, "3"], *, factor: int, backend: str = "auto"
) -> tuple[Float[Tensor, "H W 3"], Float[Tensor, "H W"]]:
    """One camera's colour and alpha rendered at ``factor`` times its size and area-averaged back to it (pixel
    centres at +0.5, so scaling the intrinsics by ``factor`` puts ``factor`` x ``factor`` sub-pixels exactly
    in each pixel)."""
    if factor == 1:
        out = render(gaussians, camera, backend=backend, background=background)
        return out.rgb[0, 0], out.alpha[0, 0, ..., 0]
    Ks = camera.Ks.clone()
    Ks[:, :2] *= factor
    fine = Cameras(camera.T_cam_world, Ks, camera.width * factor, camera.height * factor)
    out = render(gaussians, fine, backend=backend, background=background)
    rgb = F.avg_pool2d(out.rgb[0, 0].permute(2, 0, 1)[None], factor)[0].permute(1, 2, 0)
    alpha = F.avg_pool2d(out.alpha[0, 0, ..., 0][None, None], factor)[0, 0]
    return rgb, alpha
