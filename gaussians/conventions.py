"""Coordinate conventions, written once.

- Units are meters; +Y is up; right-handed. A body faces +Z in its rest pose (SMPL-X's convention).
- Cameras are OpenCV cameras: +X right, +Y down, +Z forward. ``T_cam_world`` maps world points into the
  camera frame and is exactly gsplat's ``viewmats``.
- Quaternions are ``wxyz`` inside anchorsplat. File formats that use ``xyzw`` (glTF, SPZ) convert at their
  boundary with :func:`quat_wxyz_to_xyzw` / :func:`quat_xyzw_to_wxyz`.
- Rotations passed around as axis-angle vectors follow SMPL-X (angle = norm, right-hand rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor


def quat_wxyz_to_xyzw(q: Float[Tensor, "*B 4"]) -> Float[Tensor, "*B 4"]:
    return torch.cat([q[..., 1:], q[..., :1]], dim=-1)


def quat_xyzw_to_wxyz(q: Float[Tensor, "*B 4"]) -> Float[Tensor, "*B 4"]:
    return torch.cat([q[..., 3:], q[..., :3]], dim=-1)


def quat_normalize(q: Float[Tensor, "*B 4"]) -> Float[Tensor, "*B 4"]:
    return q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def quat_to_matrix(quats_wxyz: Float[Tensor, "*B 4"]) -> Float[Tensor, "*B 3 3"]:
    """Rotation matrix of a (not necessarily unit) wxyz quaternion; the quaternion is normalised first."""
    w, x, y, z = quat_normalize(quats_wxyz).unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*w.shape, 3, 3)


def matrix_to_quat(R: Float[Tensor, "*B 3 3"]) -> Float[Tensor, "*B 4"]:
    """wxyz unit quaternion with w >= 0 of a rotation matrix (numerically stable branch per element)."""
    m = R.reshape(-1, 3, 3)
    m00, m11, m22 = m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]
    # |q_i| from the diagonal; the largest one is used to recover the others without cancellation.
    q_abs = torch.sqrt(
        torch.clamp(
            torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1),
            min=1e-12,
        )
    )
    m21_m12 = m[:, 2, 1] - m[:, 1, 2]
    m02_m20 = m[:, 0, 2] - m[:, 2, 0]
    m10_m01 = m[:, 1, 0] - m[:, 0, 1]
    m10p01 = m[:, 1, 0] + m[:, 0, 1]
    m02p20 = m[:, 0, 2] + m[:, 2, 0]
    m12p21 = m[:, 1, 2] + m[:, 2, 1]
    candidates = torch.stack(
        [
            torch.stack([q_abs[:, 0] ** 2, m21_m12, m02_m20, m10_m01], dim=-1),
            torch.stack([m21_m12, q_abs[:, 1] ** 2, m10p01, m02p20], dim=-1),
            torch.stack([m02_m20, m10p01, q_abs[:, 2] ** 2, m12p21], dim=-1),
            torch.stack([m10_m01, m02p20, m12p21, q_abs[:, 3] ** 2], dim=-1),
        ],
        dim=1,
    ) / (2.0 * q_abs[..., None])
    best = q_abs.argmax(dim=-1)
    q = candidates[torch.arange(m.shape[0], device=R.device), best]
    q = q * torch.where(q[:, :1] < 0, -1.0, 1.0)
    return quat_normalize(q).reshape(*R.shape[:-2], 4)


def quat_multiply(a: Float[Tensor, "*B 4"], b: Float[Tensor, "*B 4"]) -> Float[Tensor, "*B 4"]:
    """Hamilton product a * b (wxyz): rotating by b, then by a."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def axis_angle_to_matrix(axis_angle: Float[Tensor, "*B 3"]) -> Float[Tensor, "*B 3 3"]:
    """Rodrigues' formula, with a Taylor expansion near zero so gradients stay finite."""
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True)[..., None]  # *B 1 1
    small = theta2 < 1e-8
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = torch.sqrt(theta2_safe)
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2_safe)
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*x.shape, 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(K)
    return eye + a * K + b * (K @ K)


def matrix_to_axis_angle(R: Float[Tensor, "*B 3 3"]) -> Float[Tensor, "*B 3"]:
    q = matrix_to_quat(R)
    return quat_to_axis_angle(q)


def quat_to_axis_angle(quats_wxyz: Float[Tensor, "*B 4"]) -> Float[Tensor, "*B 3"]:
    q = quat_normalize(quats_wxyz)
    q = q * torch.where(q[..., :1] < 0, -1.0, 1.0)
    xyz = q[..., 1:]
    s = xyz.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(s, q[..., :1])
    scale = torch.where(s > 1e-8, angle / s.clamp_min(1e-12), 2.0 / q[..., :1].clamp_min(1e-12))
    return xyz * scale


def rotation_between(a: Float[Tensor, "*B 3"], b: Float[Tensor, "*B 3"]) -> Float[Tensor, "*B 3 3"]:
    """The smallest rotation taking direction ``a`` onto direction ``b``."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    axis = torch.cross(a, b, dim=-1)
    s = axis.norm(dim=-1, keepdim=True)
    c = (a * b).sum(-1, keepdim=True)
    angle = torch.atan2(s, c)
    return axis_angle_to_matrix(axis / s.clamp_min(1e-12) * angle)


@dataclass(frozen=True, eq=False)
class Cameras:
    """C pinhole cameras sharing one image size (OpenCV convention, see module docstring)."""

    T_cam_world: Float[Tensor, "C 4 4"]
    Ks: Float[Tensor, "C 3 3"]
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.T_cam_world.ndim != 3 or self.T_cam_world.shape[-2:] != (4, 4):
            raise ValueError(f"T_cam_world must be C x 4 x 4, got {tuple(self.T_cam_world.shape)}")
        if self.Ks.shape != (self.T_cam_world.shape[0], 3, 3):
            raise ValueError(f"Ks must be C x 3 x 3 matching T_cam_world, got {tuple(self.Ks.shape)}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")

    def __len__(self) -> int:
        return self.T_cam_world.shape[0]

    def __getitem__(self, index: int | slice) -> Cameras:
        sel = slice(index, index + 1) if isinstance(index, int) else index
        return Cameras(self.T_cam_world[sel], self.Ks[sel], self.width, self.height)

    def to(self, device: torch.device | str) -> Cameras:
        return Cameras(self.T_cam_world.to(device), self.Ks.to(device), self.width, self.height)

    @property
    def T_world_cam(self) -> Float[Tensor, "C 4 4"]:
        return torch.linalg.inv(self.T_cam_world)


def cropped_camera(
    camera: Cameras, x0: int | float, y0: int | float, width: int, height: int, scale: float = 1.0
) -> Cameras:
    """The camera of the ``width`` x ``height`` window at pixel (``x0``, ``y0``) of ``camera``'s image, resampled by
    ``scale`` (a window of S pixels shown at S * scale): the same rays, so a render of the window is that window of
    the whole render."""
    K = camera.Ks.clone()
    K[:, 0, 2] -= x0
    K[:, 1, 2] -= y0
    K[:, :2] *= scale
    return Cameras(camera.T_cam_world, K, width, height)


def intrinsics_from_fov(
    fov_y_deg: float, width: int, height: int, *, dtype: torch.dtype = torch.float32, device=None
) -> Float[Tensor, "3 3"]:
    """Pinhole intrinsics with square pixels and the principal point at the image centre."""
    f = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2)
    return torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=dtype, device=device)


def look_at(
    eye: Float[Tensor, "C 3"], target: Float[Tensor, "C 3"], up: Float[Tensor, "3"] | None = None
) -> Float[Tensor, "C 4 4"]:
    """``T_cam_world`` of OpenCV cameras at ``eye`` looking at ``target``, with world ``up`` (+Y) appearing up."""
    up = torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype, device=eye.device) if up is None else up
    z = target - eye
    z = z / z.norm(dim=-1, keepdim=True)
    x = torch.cross(-up.expand_as(z), z, dim=-1)  # y_cam points down (-up), and x = y x z
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    y = torch.cross(z, x, dim=-1)
    R_world_cam = torch.stack([x, y, z], dim=-1)
    T = torch.eye(4, dtype=eye.dtype, device=eye.device).repeat(eye.shape[0], 1, 1)
    T[:, :3, :3] = R_world_cam.transpose(-1, -2)
    T[:, :3, 3] = -(R_world_cam.transpose(-1, -2) @ eye[..., None])[..., 0]
    return T


def orbit_cameras(
    target: Float[Tensor, "3"],
    distance: float,
    yaw_deg: Float[Tensor, " C"],
    *,
    pitch_deg: float = 0.0,
    fov_y_deg: float = 30.0,
    width: int = 512,
    height: int = 512,
) -> Cameras:
    """Cameras on a circle around ``target``; yaw 0 sits on +Z (in front of a body facing +Z)."""
    yaw = torch.deg2rad(yaw_deg.to(target.dtype))
    pitch = math.radians(pitch_deg)
    offset = torch.stack(
        [torch.sin(yaw) * math.cos(pitch), torch.full_like(yaw, math.sin(pitch)), torch.cos(yaw) * math.cos(pitch)],
        dim=-1,
    )
    eye = target[None] + distance * offset
    T = look_at(eye, target[None].expand_as(eye))
    K = intrinsics_from_fov(fov_y_deg, width, height, dtype=target.dtype, device=target.device)
    return Cameras(T, K.expand(len(yaw), 3, 3).clone(), width, height)


def project_points(points_world: Float[Tensor, "N 3"], cameras: Cameras) -> Float[Tensor, "C N 2"]:
    """Pixel coordinates (x right, y down; pixel centres at +0.5) of world points in each camera."""
    p_cam = points_world @ cameras.T_cam_world[:, :3, :3].transpose(-1, -2) + cameras.T_cam_world[:, None, :3, 3]
    uvw = p_cam @ cameras.Ks.transpose(-1, -2)
    return uvw[..., :2] / uvw[..., 2:3]


VIEW_YAWS_DEG = {"front": 0.0, "three-quarter": 35.0, "left": 90.0, "back": 180.0, "right": -90.0}
"""Camera yaw of the named views, for a body facing +Z ("left" looks at the body's left side)."""


def framing_cameras(
    points: Float[Tensor, "N 3"],
    yaw_deg: Float[Tensor, " C"],
    *,
    width: int = 512,
    height: int = 512,
    fov_y_deg: float = 30.0,
    margin: float = 1.1,
    pitch_deg: float = 0.0,
) -> Cameras:
    """Orbit cameras around the points' bounding box, far enough that the box fits the frame from any yaw."""
    lo, hi = points.min(0).values, points.max(0).values
    center = (lo + hi) / 2
    half_h = float(hi[1] - lo[1]) / 2
    half_w = float(torch.linalg.vector_norm(hi[[0, 2]] - lo[[0, 2]])) / 2  # widest horizontal extent any yaw sees
    tan_y = math.tan(math.radians(fov_y_deg) / 2)
    tan_x = tan_y * width / height
    distance = margin * max(half_h / tan_y, half_w / tan_x) + half_w
    return orbit_cameras(
        center, distance, yaw_deg, pitch_deg=pitch_deg, fov_y_deg=fov_y_deg, width=width, height=height
    )
