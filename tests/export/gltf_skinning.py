"""An independent reading of a .glb the way the glTF 2.0 specification poses it (used by the export tests).

Only the file is used: node TRS and hierarchy, animation keyframes (sampled at a key, so no interpolation
choice is involved), skin joints and inverse bind matrices, morph targets and their weights, JOINTS_0 /
WEIGHTS_0. Morph targets first, then linear blend skinning with ``world(joint) @ inverseBind(joint)``; the
skinned mesh node's own transform is ignored, as the specification says.
"""

from __future__ import annotations

import numpy as np

from anchorsplat.gaussians.import_gltf import Glb


def _quat_xyzw_to_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def animated_properties(glb: Glb, key: int | None, animation: int = 0) -> dict[tuple[int, str], np.ndarray]:
    """(node, path) -> value of every animation channel at keyframe ``key`` (``None``: no animation)."""
    doc = glb.json
    if key is None or not doc.get("animations"):
        return {}
    anim = doc["animations"][animation]
    out = {}
    for channel in anim["channels"]:
        sampler = anim["samplers"][channel["sampler"]]
        frames = len(glb.accessor(sampler["input"]))
        values = glb.accessor(sampler["output"]).astype(np.float64).reshape(frames, -1)
        target = channel["target"]
        out[(target["node"], target["path"])] = values[key]
    return out


def world_matrices(glb: Glb, props: dict[tuple[int, str], np.ndarray]) -> np.ndarray:
    doc = glb.json
    nodes = doc["nodes"]
    local = np.tile(np.eye(4), (len(nodes), 1, 1))
    for i, node in enumerate(nodes):
        if "matrix" in node:
            local[i] = np.array(node["matrix"], dtype=np.float64).reshape(4, 4).T
            continue
        t = props.get((i, "translation"), np.array(node.get("translation", [0.0, 0.0, 0.0])))
        r = props.get((i, "rotation"), np.array(node.get("rotation", [0.0, 0.0, 0.0, 1.0])))
        s = props.get((i, "scale"), np.array(node.get("scale", [1.0, 1.0, 1.0])))
        local[i, :3, :3] = _quat_xyzw_to_matrix(np.asarray(r, dtype=np.float64)) * np.asarray(s)[None, :]
        local[i, :3, 3] = t
    world = np.zeros_like(local)

    def visit(i: int, parent: np.ndarray) -> None:
        world[i] = parent @ local[i]
        for child in nodes[i].get("children", []):
            visit(child, world[i])

    for root in doc["scenes"][doc.get("scene", 0)]["nodes"]:
        visit(root, np.eye(4))
    return world


def skinned_positions(glb: Glb, mesh_node_name: str, key: int | None) -> np.ndarray:
    """Vertex / splat positions of the named skinned mesh node at animation keyframe ``key`` (V 3)."""
    doc = glb.json
    index = next(i for i, n in enumerate(doc["nodes"]) if n.get("name") == mesh_node_name)
    node = doc["nodes"][index]
    props = animated_properties(glb, key)
    world = world_matrices(glb, props)
    skin = doc["skins"][node["skin"]]
    inverse_bind = glb.accessor(skin["inverseBindMatrices"]).astype(np.float64).reshape(-1, 4, 4).transpose(0, 2, 1)
    joint_matrices = world[skin["joints"]] @ inverse_bind  # J 4 4
    mesh = doc["meshes"][node["mesh"]]
    primitive = mesh["primitives"][0]
    positions = glb.accessor(primitive["attributes"]["POSITION"]).astype(np.float64)
    weights = props.get((index, "weights"), np.array(node.get("weights", mesh.get("weights", []))))
    for w, target in zip(weights, primitive.get("targets", []), strict=True):
        positions = positions + w * glb.accessor(target["POSITION"]).astype(np.float64)
    joints = glb.accessor(primitive["attributes"]["JOINTS_0"]).astype(np.int64)
    skin_weights = glb.accessor(primitive["attributes"]["WEIGHTS_0"]).astype(np.float64)
    homogeneous = np.concatenate([positions, np.ones((len(positions), 1))], 1)
    blended = np.einsum("vk,vkij->vij", skin_weights, joint_matrices[joints])
    return np.einsum("vij,vj->vi", blended, homogeneous)[:, :3]
