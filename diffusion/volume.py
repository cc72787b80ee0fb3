"""Hair and loose-clothing volume: Gaussians that leave the body surface where the photo's silhouette says so.

Body-bound Gaussians sit on the skin, so hair beside the head, long hair over the shoulders or a skirt around
the legs has nothing to land on: it is painted onto the neck and chest instead. :func:`volume_shell` adds a
shell of extra Gaussians bound to the head, neck, torso and leg triangles at a distance along each triangle's
normal that the photo decides:

1. **Measured at the outline.** For a triangle seen edge-on by the photo camera (its normal within
   :data:`OUTLINE_COS` of the image plane) the bake marches along the normal from the posed surface: past the
   fitted body's own silhouette (a render of the body from the photo camera), every step still on the person
   mask (hair, clothes) is volume; the first step off the mask ends it. Triangles facing the camera, and
   edge-on ones whose normal leaves the body's silhouette only far out (hidden behind an arm, a cheek), keep
   their Gaussians on the surface (what the photo sees there is painted on it).
2. **A smooth prior behind.** Triangles facing away from the camera are not seen: their offsets are the
   harmonic continuation (a Laplace solve on the triangle adjacency graph) of the measured outline and of the
   zero offsets in front, so the visible head outline continues round the back of the head (a hair shell) and
   a skirt's outline continues round the back of the legs.
3. **Colour.** Shell Gaussians whose photo-pose position projects onto person pixels outside the body's
   silhouette take the photo's colour there (the hair and clothes beyond the body); the others take the
   inverse-distance weighted colour of the nearest seen shell Gaussians.

4. **Inset.** A Gaussian's soft edge reaches about one tangent scale beyond its centre, so Gaussians centred on
   the skin (or on the shell's measured outline) draw the outline that much too far out: a fat, blurred
   silhouette at every view the low-resolution fit cannot correct. :func:`inset_offsets` sinks each Gaussian by
   :data:`INSET` of its tangent scale, for the surface Gaussians of the fit's start and for the shell.

5. **Round, and sized by their spread.** The shell of an outline triangle stands off along its normal, in the
   photo's image plane: discs parallel to the skin are seen edge-on from the front, and at an offset d off a body
   of radius R the normals spread the Gaussians (R + d) / R times farther apart than on the skin. Shell Gaussians
   are therefore round and their scale grows with that spread (:func:`shell_spread`); the outermost sit
   :data:`SHELL_INSET` of their scale inside the outline. Skin-sized flat discs left cracks and holes through the
   hair (a spotty cloud in the proxy's frames, and so in the baked avatar).

The offsets are per vertex (the mean of the incident triangles'), so a Gaussian's offset follows its
barycentric position smoothly. ``allowance`` (per triangle) tells the fit how far Gaussians bound there may
leave the surface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from anchorsplat.gaussians.conventions import Cameras
from anchorsplat.gaussians.render import render
from anchorsplat.gaussians.rig import Rig
from anchorsplat.gaussians.rigged import (
    RiggedGaussians,
    bind_to_surface,
    canonical_means,
    pose_from_vertices,
    pose_motion_mesh,
    rgb_to_sh_dc,
    triangle_frames,
)

from .generator import Subject
from .texture import LABEL_BACKGROUND, LABEL_PERSON, PART_NAMES, fill_hidden, labels_of, triangle_parts

SHELL_PARTS = ("head", "neck", "torso", "leg")
"""Body parts whose triangles may carry volume (arms and hands are fitted as they are)."""
OUTLINE_COS = 0.4
"""A triangle is measured at the outline when |cos| between its normal and the view ray is below this."""
MAX_OFFSET = 0.25
"""Meters: the farthest a shell Gaussian may sit from the skin (a skirt's hem, long hair's ends)."""
MIN_OFFSET = 0.012
"""Meters: thinner volume than this is left to the surface Gaussians."""
STEP = 0.005
"""Meters between the samples of the march along a normal."""
OUTLINE_REACH = 0.02
"""Meters: a measured triangle's normal must leave the body's silhouette within this (it is on the outline)."""
WORK_PX = 256
"""Longer image side at which the silhouettes are compared (the march needs no more)."""
INSET = 0.25
"""Gaussians sit this share of their tangent scale (1 sigma) inside the outline they draw (see step 4)."""
SHELL_INSET = 0.75
"""The shell's Gaussians sit this share of their scale inside the measured outline: at the shell's outer edge they
stand side by side, so their alpha reaches past the outline by about one scale each, not just the soft edge (at
:data:`INSET` the round shell drew the curly hair's outline a few pixels outside the photo's mask; at 1.0 a
skirt's hem came out shallower front to back than the synthetic skirt's)."""
OUTER_DENSITY_OFFSET = 0.05
"""Meters: a shell standing this far off the skin is bound twice as densely as the skin (:func:`shell_density`)."""
CURVATURE_RADIUS = 0.08
"""Meters: the radius of the body where a shell stands far off it (the head; the torso and legs are flatter)."""
ACROSS = 10.0
"""The harmonic continuation's weight of a neighbour at the same height relative to one straight above or below."""


FACE_FRONT = 0.5
"""Rest-pose points in front of this share of the head's depth (from its back) are in front of the face..."""
FACE_TOP = 0.12
"""...when they are more than this share of the head's height under its top (the hairline: the forehead is part of
the face, a fringe over it is painted on the skin) and above the head's lowest point (long hair in front of the
chest stays). At 0.3 (the brows) the shell of the temples stood off over the forehead's corners: hair over the
forehead at yaw +-30."""


def in_front_of_face(points_rest: Float[Tensor, "N 3"], rig: Rig) -> Bool[Tensor, " N"]:
    """Which rest-pose points (e.g. ``canonical_means`` of Gaussians) lie in front of the face: in front of the
    middle of the head's depth and between its lowest point and its brows, in the rest pose (which faces +Z). A
    volume shell there hides the face from the front and the sides. For a rig without head triangles: none."""
    head = triangle_parts(rig) == PART_NAMES.index("head")
    if not bool(head.any()):
        return torch.zeros(len(points_rest), dtype=torch.bool, device=points_rest.device)
    vertices = rig.vertices_rest[rig.faces[head].reshape(-1)]
    lo, hi = vertices.min(0).values.to(points_rest), vertices.max(0).values.to(points_rest)
    front = points_rest[:, 2] > lo[2] + FACE_FRONT * (hi[2] - lo[2])
    level = (points_rest[:, 1] > lo[1]) & (points_rest[:, 1] < hi[1] - FACE_TOP * (hi[1] - lo[1]))
    return front & level


@dataclass(frozen=True, eq=False)
class VolumeShell:
    """The shell Gaussians and, per triangle of the rig, how far from the surface Gaussians may sit there."""

    gaussians: RiggedGaussians
    allowance: Float[Tensor, " F"]
    face_offsets: Float[Tensor, " F"]
    """The shell's offset per triangle (meters; 0 where there is no volume)."""


def volume_shell(
    subject: Subject,
    num_gaussians: int,
    *,
    seed: int = 0,
    backend: str = "auto",
    max_offset: float = MAX_OFFSET,
    clear_face: bool = True,
) -> VolumeShell:
    """The volume shell of ``subject`` (see the module docstring); ``num_gaussians`` at most (fewer when the
    silhouette shows little volume, none when it shows none). With ``clear_face``, the Gaussians that would sit in
    front of the face (:func:`in_front_of_face`) are left out: hair measured beside the cheeks in the photo stands
    off the cheek along its normal, and such flaps hid the face in 3/4 views (of the proxy's frames and of the
    baked avatar's portraits)."""
    rig = subject.rig
    vertices = pose_motion_mesh(rig, subject.motion).vertices[0]
    offsets = face_offsets(subject, vertices, backend=backend, max_offset=max_offset)
    device = rig.vertices_rest.device
    has_volume = offsets >= MIN_OFFSET
    vertex_offsets = _vertex_values(rig, offsets)
    # a Gaussian's offset is interpolated from its triangle's vertices: the allowance covers the largest of them
    reach = torch.maximum(vertex_offsets[rig.faces].max(-1).values, offsets)
    allowance = torch.where((reach >= MIN_OFFSET) & _shell_faces(rig), reach + 0.02, torch.zeros_like(reach))
    count = int(round(num_gaussians * min(1.0, float(has_volume.float().mean()) * 10)))
    if count == 0:
        empty = bind_to_surface(rig, 1).subset(torch.zeros(0, dtype=torch.long, device=device))
        return VolumeShell(empty, allowance, offsets)
    density = has_volume.to(rig.vertices_rest.dtype) * shell_density(offsets)
    g = bind_to_surface(rig, count, generator=torch.Generator().manual_seed(seed + 7), face_density=density)
    per_gaussian = (vertex_offsets[rig.faces[g.face_ids]] * g.barycentric).sum(-1)
    depth = torch.rand(count, generator=torch.Generator().manual_seed(seed + 8)).to(per_gaussian)
    offset = per_gaussian * (0.65 + 0.35 * depth)  # a layer, not a sheet: thickness behind the outline
    scale = math.exp(float(g.log_scales[:, 0].median())) * 1.6 * shell_spread(offset, shell_density(offset))
    # round, not flat: the shell of an outline triangle stands off along its normal, in the photo's image plane, so
    # discs parallel to the skin were seen edge-on from the front (thin streaks with holes between them)
    log_scales = scale.log()[:, None].expand(count, 3).clone()
    # the outermost Gaussians' soft edge ends at the outline
    normal_offsets = (offset - SHELL_INSET * scale).clamp_min(0.0)
    shell = RiggedGaussians(g.face_ids, g.barycentric, normal_offsets, g.quats_canonical_wxyz, log_scales,
                            g.opacity_logits, g.sh_coeffs)  # fmt: skip
    if clear_face:
        shell = shell.subset(~in_front_of_face(canonical_means(shell, rig), rig))
    colours = shell_colours(shell, subject, vertices)
    shell = RiggedGaussians(shell.face_ids, shell.barycentric, shell.normal_offsets, shell.quats_canonical_wxyz,
                            shell.log_scales, shell.opacity_logits, rgb_to_sh_dc(colours)[:, None])  # fmt: skip
    return VolumeShell(shell, allowance, offsets)


def shell_density(offsets: Float[Tensor, " N"]) -> Float[Tensor, " N"]:
    """Shell Gaussians bound per unit of skin where the shell stands ``offsets`` (meters) off it, relative to the
    skin's own: outer shells cover more area (:data:`OUTER_DENSITY_OFFSET`)."""
    return 1 + offsets / OUTER_DENSITY_OFFSET


def shell_spread(offsets: Float[Tensor, " N"], density: Float[Tensor, " N"] | float = 1.0) -> Float[Tensor, " N"]:
    """How much farther apart Gaussians bound at ``offsets`` (meters) off a curved body sit than on its skin, with
    ``density`` times as many per unit of skin: the area a triangle's normals sweep grows as ((R + d) / R)^2 on a
    body of radius R (:data:`CURVATURE_RADIUS`), so a shell sized like the skin's Gaussians has holes between
    its Gaussians that grow with the offset (radial gaps round the top of the head, spots in the hair)."""
    return (1 + offsets / CURVATURE_RADIUS) / torch.as_tensor(density, dtype=offsets.dtype).sqrt()


def face_offsets(
    subject: Subject, vertices: Float[Tensor, "V 3"], *, backend: str = "auto", max_offset: float = MAX_OFFSET
) -> Float[Tensor, " F"]:
    """Per triangle: the volume's depth along its normal (meters), measured at the outline, continued behind."""
    rig = subject.rig
    camera, person = _working_view(subject)
    body = _body_silhouette(rig, vertices, camera, backend)
    faces = rig.faces
    tri = vertices[faces]
    centres = tri.mean(1)
    normals = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    normals = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    to_camera = camera.T_world_cam[0, :3, 3] - centres
    cos = (to_camera * normals).sum(-1) / to_camera.norm(dim=-1).clamp_min(1e-12)
    candidate = _shell_faces(rig)
    outline = candidate & (cos.abs() < OUTLINE_COS)
    measured = torch.zeros(len(faces), dtype=centres.dtype, device=centres.device)
    measured[outline] = _march(centres[outline], normals[outline], camera, person, body, max_offset)
    hidden = measured.isnan()
    # edge-on but hidden behind another part (a torso side behind the arm, a cheek): no evidence of volume, 0
    measured = measured.nan_to_num(0.0)
    # a leg is a tube that a skirt or wide trousers wrap: only its measured outline is known, the front and the
    # hidden inner side are continued from it like the back (elsewhere what faces the camera is skin: 0)
    tube = triangle_parts(rig) == PART_NAMES.index("leg")
    known = (outline & ~(tube & hidden)) | (candidate & (cos >= OUTLINE_COS) & ~tube) | ~candidate
    return _harmonic_fill(faces, measured, known, candidate, rig.vertices_rest[faces].mean(1)).clamp(0, max_offset)


def _shell_faces(rig: Rig) -> Tensor:
    """The triangles of the :data:`SHELL_PARTS`."""
    parts = triangle_parts(rig)
    allowed = torch.zeros(len(PART_NAMES), dtype=torch.bool, device=parts.device)
    allowed[[PART_NAMES.index(p) for p in SHELL_PARTS]] = True
    return allowed[parts]


def _working_view(subject: Subject) -> tuple[Cameras, Bool[Tensor, "H W"]]:
    """The photo camera and person mask at :data:`WORK_PX` on the longer side."""
    h, w = subject.photo.shape[:2]
    factor = min(1.0, WORK_PX / max(h, w))
    hh, ww = max(1, round(h * factor)), max(1, round(w * factor))
    person = (labels_of(subject) != LABEL_BACKGROUND).float().to(subject.photo.device)
    person = F.interpolate(person[None, None], size=(hh, ww), mode="area")[0, 0]
    Ks = subject.camera.Ks.clone()
    Ks[:, 0] *= ww / w
    Ks[:, 1] *= hh / h
    return Cameras(subject.camera.T_cam_world, Ks, ww, hh), person > 0.5


def _body_silhouette(rig: Rig, vertices: Tensor, camera: Cameras, backend: str) -> Tensor:
    """Where the fitted body itself covers the image (opaque surface Gaussians, alpha > 0.5)."""
    g = bind_to_surface(rig, 30000, generator=torch.Generator().manual_seed(3))
    opaque = RiggedGaussians(g.face_ids, g.barycentric, g.normal_offsets, g.quats_canonical_wxyz, g.log_scales,
                             torch.full_like(g.opacity_logits, 8.0), g.sh_coeffs)  # fmt: skip
    with torch.no_grad():
        out = render(pose_from_vertices(opaque, rig, vertices[None]), camera, backend=backend)
    return out.alpha[0, 0, ..., 0] > 0.5


def _march(
    centres: Float[Tensor, "M 3"], normals: Float[Tensor, "M 3"], camera: Cameras, person: Tensor, body: Tensor,
    max_offset: float,
) -> Float[Tensor, " M"]:  # fmt: skip
    """Along each normal: past the body's silhouette, how far the person mask goes on (0 if it stops there)."""
    steps = torch.arange(1, int(max_offset / STEP) + 1, dtype=centres.dtype, device=centres.device) * STEP
    points = centres[:, None] + steps[None, :, None] * normals[:, None]  # M K 3
    T, K = camera.T_cam_world[0], camera.Ks[0]
    p_cam = points @ T[:3, :3].T + T[:3, 3]
    uv = (p_cam @ K.T)[..., :2] / p_cam[..., 2:3].clamp_min(1e-6)
    h, w = person.shape
    x, y = uv[..., 0].floor().long(), uv[..., 1].floor().long()
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h) & (p_cam[..., 2] > 0)
    xc, yc = x.clamp(0, w - 1), y.clamp(0, h - 1)
    on_person = inside & person[yc, xc]
    on_body = inside & body[yc, xc]
    n_steps = steps.shape[0]
    index = torch.arange(n_steps, device=centres.device).expand_as(on_body)
    first_off_body = torch.where(~on_body, index, torch.full_like(index, n_steps)).min(1).values  # M
    # from the first step off the body: the run of person pixels off the body that follows it (reaching the
    # body again, e.g. the head above a shoulder, ends it too)
    after = index >= first_off_body[:, None]
    broken = after & (~on_person | on_body)
    first_break = torch.where(broken, index, torch.full_like(index, n_steps)).min(1).values
    run = (first_break - first_off_body).clamp_min(0)
    last = (first_off_body + run - 1).clamp(0, n_steps - 1)
    depth = torch.where(run > 0, steps[last], torch.zeros_like(steps[last]))
    # a triangle whose normal leaves the body's silhouette only far out is not on the outline: NaN
    # (at least 3 working pixels: a coarse silhouette's edge is a pixel or two off the true outline)
    pixel = p_cam[:, 0, 2] / K[0, 0]
    reach = torch.clamp_min(3 * pixel, OUTLINE_REACH)
    at_outline = first_off_body < (reach / STEP).round()
    return torch.where(at_outline, depth, torch.full_like(depth, float("nan")))


def _harmonic_fill(
    faces: Tensor, values: Tensor, known: Tensor, candidate: Tensor, centres_rest: Tensor | None = None
) -> Tensor:
    """Unknown triangles' values: the solution of the graph Laplace equation with the known ones fixed
    (triangles are neighbours when they share an edge; only candidate triangles are connected). With
    ``centres_rest`` (the triangles' rest-pose centres), a neighbour across the body counts more than one above or
    below (:data:`ACROSS`): volume continues round the body at the height it was measured (a skirt's hem)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    f = faces.cpu().numpy()
    n = len(f)
    edges = np.concatenate([np.sort(f[:, [0, 1]], 1), np.sort(f[:, [1, 2]], 1), np.sort(f[:, [2, 0]], 1)])
    owner = np.tile(np.arange(n), 3)
    key = edges[:, 0].astype(np.int64) * (int(f.max()) + 1) + edges[:, 1]
    order = np.argsort(key, kind="stable")
    same = key[order][1:] == key[order][:-1]
    a, b = owner[order][:-1][same], owner[order][1:][same]
    cand = candidate.cpu().numpy()
    keep = cand[a] & cand[b]
    a, b = a[keep], b[keep]
    weight = np.ones(len(a))
    if centres_rest is not None:
        c = centres_rest.detach().cpu().double().numpy()
        d = c[a] - c[b]
        level = 1 - d[:, 1] ** 2 / np.maximum((d**2).sum(1), 1e-20)  # 1 for a neighbour at the same height
        weight = 1 + (ACROSS - 1) * level
    adjacency = sp.coo_matrix((np.r_[weight, weight], (np.r_[a, b], np.r_[b, a])), shape=(n, n)).tocsr()
    laplacian = sp.diags(np.asarray(adjacency.sum(1)).ravel()) - adjacency
    x = values.detach().cpu().double().numpy().copy()
    unknown = ~known.cpu().numpy()
    solvable = unknown & (np.asarray(adjacency.sum(1)).ravel() > 0)
    if solvable.any():
        u, k = np.nonzero(solvable)[0], np.nonzero(~solvable)[0]
        lap_uu = laplacian[u][:, u] + sp.identity(len(u)) * 1e-6  # a component with no known triangle stays ~0
        x[u] = spsolve(lap_uu.tocsc(), -(laplacian[u][:, k] @ x[k]))
    x[unknown & ~solvable] = 0.0
    return torch.from_numpy(x).to(values)


def _vertex_values(rig: Rig, face_values: Float[Tensor, " F"]) -> Float[Tensor, " V"]:
    """Per vertex: the mean of the incident triangles' values."""
    v = rig.vertices_rest.shape[0]
    total = torch.zeros(v, dtype=face_values.dtype, device=face_values.device)
    count = torch.zeros_like(total)
    flat = rig.faces.reshape(-1)
    total.index_add_(0, flat, face_values.repeat_interleave(3))
    count.index_add_(0, flat, torch.ones_like(face_values).repeat_interleave(3))
    return total / count.clamp_min(1)


def shell_colours(shell: RiggedGaussians, subject: Subject, vertices: Float[Tensor, "V 3"]) -> Float[Tensor, "N 3"]:
    """Photo colours of the shell Gaussians that land on person pixels beyond the body, the rest completed."""
    rig = subject.rig
    frames = triangle_frames(vertices, rig.faces, shell.face_ids, shell.barycentric)
    # sampled a little inside the shell: the outline's pixels are half background
    points = frames.points + 0.85 * shell.normal_offsets[:, None] * frames.rotations[..., 2]
    h, w = subject.photo.shape[:2]
    T, K = subject.camera.T_cam_world[0], subject.camera.Ks[0]
    p_cam = points @ T[:3, :3].T + T[:3, 3]
    uv = (p_cam @ K.T)[:, :2] / p_cam[:, 2:3].clamp_min(1e-6)
    camera, person = _working_view(subject)
    body = _body_silhouette(rig, vertices, camera, "auto")
    scale = torch.tensor([camera.width / w, camera.height / h], dtype=uv.dtype, device=uv.device)
    xy = (uv * scale).floor().long()
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < camera.width) & (xy[:, 1] >= 0) & (xy[:, 1] < camera.height)
    xc, yc = xy[:, 0].clamp(0, camera.width - 1), xy[:, 1].clamp(0, camera.height - 1)
    # beyond the body's outline, or on a leg in front of it facing the camera (a skirt's front): the photo shows
    # the shell. Not elsewhere: in front of the head or torso the pixel is as likely the skin or shirt under a
    # thin shell (with the rule on every part, the sample's turned-view identity distances were worse)
    to_camera = subject.camera.T_world_cam[0, :3, 3] - points
    on_leg = triangle_parts(rig)[shell.face_ids] == PART_NAMES.index("leg")
    facing = on_leg & ((to_camera * frames.rotations[..., 2]).sum(-1) > OUTLINE_COS * to_camera.norm(dim=-1))
    # and only on pixels labelled the person: the face's skin or a hand just past the body's outline (a photo's head
    # a little larger than the fitted one) is not hair; taken, it made pale spots along the hairline that the
    # completion carried round the back of the head
    labels = labels_of(subject)
    px = (uv[:, 0].floor().long().clamp(0, w - 1), uv[:, 1].floor().long().clamp(0, h - 1))
    hair_or_clothes = labels.to(px[0].device)[px[1], px[0]] == LABEL_PERSON
    seen = inside & person[yc, xc] & hair_or_clothes & (~body[yc, xc] | facing) & (p_cam[:, 2] > 0)
    grid = torch.stack([uv[:, 0] / w * 2 - 1, uv[:, 1] / h * 2 - 1], dim=-1)[None, None]
    rgb = F.grid_sample(subject.photo.permute(2, 0, 1)[None].float(), grid.float(), align_corners=False)
    rgb = rgb[0, :, 0].T.to(points.dtype)
    if not bool(seen.any()):  # no volume beyond the body is visible: the shell takes the photo's hair-free mean
        return torch.where(seen[:, None], rgb, rgb.mean(0, keepdim=True).expand_as(rgb))
    means = canonical_means(shell, rig)
    return fill_hidden(
        means, seen, torch.where(seen[:, None], rgb, torch.zeros_like(rgb)), 1e6
    )  # no mirror: hair is not symmetric about the body


def inset_depth(log_scales: Float[Tensor, "N 3"], fraction: float = INSET) -> Float[Tensor, " N"]:
    """Meters :func:`inset_offsets` sinks each Gaussian: ``fraction`` of its tangent scale (the mean of its two
    largest axes, 1 sigma). The fit lets Gaussians sit this deep unpenalised (``bake.fit.offset_excess``)."""
    return fraction * log_scales.exp().sort(dim=-1, descending=True).values[:, :2].mean(-1)


def inset_offsets(g: RiggedGaussians, fraction: float = INSET) -> Float[Tensor, " N"]:
    """Normal offsets that sink each Gaussian by :func:`inset_depth`, so its soft edge ends near the surface it
    sits on instead of a scale beyond it."""
    return g.normal_offsets - inset_depth(g.log_scales, fraction)


def with_shell(g: RiggedGaussians, shell: RiggedGaussians) -> RiggedGaussians:
    """The surface Gaussians followed by the shell's (same SH degree)."""
    sh = shell.sh_coeffs
    if sh.shape[1] != g.sh_coeffs.shape[1]:
        sh = torch.cat([sh, sh.new_zeros(len(sh), g.sh_coeffs.shape[1] - sh.shape[1], 3)], dim=1)
    names = ("face_ids", "barycentric", "normal_offsets", "quats_canonical_wxyz", "log_scales", "opacity_logits")
    parts = {k: torch.cat([getattr(g, k), getattr(shell, k).to(getattr(g, k))]) for k in names}
    return RiggedGaussians(**parts, sh_coeffs=torch.cat([g.sh_coeffs, sh.to(g.sh_coeffs)]))
