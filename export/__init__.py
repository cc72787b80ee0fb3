"""Engine-ready surfaces from a Gaussian avatar: mesh extraction (RGB-D renders fused with a TSDF), xatlas UVs,
a texture baked from the splat renders, skinning and expressions transferred from the body rig, OBJ writing.

Imports :mod:`anchorsplat.gaussians` only; open3d, trimesh and xatlas (the ``export`` extra) are imported lazily
where they are used. The glb and VRM writers live in ``gaussians`` and take the result, a
:class:`~anchorsplat.gaussians.surface.SkinnedSurface`.
"""
