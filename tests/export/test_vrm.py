"""VRM 1.0 export: the VRMC_vrm humanoid map from the rig, ARKit -> VRM expression presets, look-at and meta;
the Khronos validator on the file."""

from __future__ import annotations

import pytest
from jstools import run_node

from anchorsplat.gaussians.export_vrm import PRESETS, REQUIRED_BONES, VRM_EXTENSION, export_vrm, humanoid_bones
from anchorsplat.gaussians.import_gltf import read_glb

EXPECTED_ANNY = {
    "hips": "root", "spine": "spine05", "chest": "spine03", "upperChest": "spine02", "neck": "neck01",
    "head": "head", "leftUpperArm": "upperarm01.L", "leftLowerArm": "lowerarm01.L", "leftHand": "wrist.L",
    "rightUpperArm": "upperarm01.R", "rightLowerArm": "lowerarm01.R", "rightHand": "wrist.R",
    "leftUpperLeg": "upperleg01.L", "leftLowerLeg": "lowerleg01.L", "leftFoot": "foot.L",
    "rightUpperLeg": "upperleg01.R", "rightLowerLeg": "lowerleg01.R", "rightFoot": "foot.R",
    "leftShoulder": "clavicle.L", "rightShoulder": "clavicle.R", "leftEye": "eye.L", "rightEye": "eye.R",
}  # fmt: skip


def _vrm(path) -> tuple[dict, dict]:
    doc = read_glb(path).json
    return doc, doc["extensions"][VRM_EXTENSION]


def test_humanoid_bones_follow_the_rig(body_vrm, body_avatar):
    doc, vrm = _vrm(body_vrm)
    assert vrm["specVersion"] == "1.0" and VRM_EXTENSION in doc["extensionsUsed"]
    bones = {name: doc["nodes"][b["node"]]["name"] for name, b in vrm["humanoid"]["humanBones"].items()}
    assert set(REQUIRED_BONES) <= set(bones)
    assert {k: bones[k] for k in EXPECTED_ANNY} == EXPECTED_ANNY
    parents = {c: p for p, node in enumerate(doc["nodes"]) for c in node.get("children", [])}

    def ancestors(node: int) -> set[int]:
        out = set()
        while node in parents:
            node = parents[node]
            out.add(node)
        return out

    nodes = {name: b["node"] for name, b in vrm["humanoid"]["humanBones"].items()}
    pairs = [("leftHand", "leftLowerArm"), ("leftLowerArm", "leftUpperArm"), ("rightFoot", "rightLowerLeg"),
             ("head", "neck"), ("neck", "upperChest"), ("spine", "hips"), ("leftUpperLeg", "hips")]  # fmt: skip
    for child, parent in pairs:
        assert nodes[parent] in ancestors(nodes[child]), (child, parent)


def test_expression_presets_bind_the_arkit_morph_targets(body_vrm, body_avatar):
    doc, vrm = _vrm(body_vrm)
    names = body_avatar.rig.expression_names
    surface = next(i for i, n in enumerate(doc["nodes"]) if n.get("name") == "surface")
    targets = doc["meshes"][doc["nodes"][surface]["mesh"]]["extras"]["targetNames"]
    assert targets == list(names)
    preset = vrm["expressions"]["preset"]
    for required in ("aa", "ih", "ou", "ee", "oh", "blink", "happy", "angry", "sad", "relaxed", "surprised"):
        assert required in preset, required
    assert preset["aa"]["morphTargetBinds"] == [{"node": surface, "index": names.index("jawOpen"), "weight": 1.0}]
    for name, expression in preset.items():
        bound = {targets[b["index"]]: b["weight"] for b in expression["morphTargetBinds"]}
        assert bound == PRESETS[name] and all(b["node"] == surface for b in expression["morphTargetBinds"])
    assert vrm["lookAt"]["type"] == "expression" and {"lookUp", "lookDown", "lookLeft", "lookRight"} <= set(preset)
    meta = vrm["meta"]
    assert meta["name"] == "body" and meta["licenseUrl"] == "https://vrm.dev/licenses/1.0/" and meta["authors"]


def test_vrm_has_no_validator_errors_or_warnings(node, body_vrm):
    report = run_node("validate_gltf.mjs", body_vrm, timeout=300)
    assert [m["pointer"] for m in report["messages"] if m["code"] == "UNSUPPORTED_EXTENSION"] == ["/extensionsUsed/0"]
    assert report["numErrors"] == 0 and report["numWarnings"] == 0, report["messages"]


def test_rig_without_humanoid_bones_is_refused(avatar, surface, tmp_path):
    with pytest.raises(ValueError, match="no joint for the VRM humanoid bones"):
        humanoid_bones(avatar.rig)
    with pytest.raises(ValueError, match="must end in .vrm"):
        export_vrm(avatar, tmp_path / "a.glb", surface)


@pytest.fixture(scope="module")
def three_vrm(chromium, body_vrm, tmp_path_factory) -> dict:
    import json

    from jstools import JS_DIR

    if not (JS_DIR / "node_modules" / "@pixiv" / "three-vrm" / "package.json").is_file():
        pytest.fail(f"the npm package @pixiv/three-vrm is not installed in {JS_DIR}: run `npm ci --prefix {JS_DIR}`")
    job = tmp_path_factory.mktemp("vrm_browser") / "job.json"
    job.write_text(json.dumps({"vrm": str(body_vrm)}))
    result = run_node("browser_checks.mjs", job, timeout=180)
    assert result["pageErrors"] == []
    return result["vrm"]


def test_three_vrm_loads_the_humanoid_and_aa_opens_the_mouth(three_vrm, body_avatar):
    import numpy as np

    out = three_vrm
    assert out["loaded"] and out["metaVersion"] == "1" and out["name"] == "body"
    checked = ("hips", "spine", "head", "leftUpperArm", "leftHand", "rightFoot")
    # three.js sanitises node names for its animation bindings: "wrist.L" becomes "wristL"
    assert {k: out["bones"][k] for k in checked} == {k: EXPECTED_ANNY[k].replace(".", "") for k in checked}
    assert {"aa", "ih", "ou", "ee", "oh", "blink", "happy", "angry", "sad", "relaxed", "surprised"} <= set(
        out["expressions"]
    )
    rig = body_avatar.rig
    jaw = rig.expression_names.index("jawOpen")
    assert out["influences"][jaw] == pytest.approx(1.0)
    moved = np.linalg.norm(np.reshape(out["open"], (-1, 3)) - np.reshape(out["neutral"], (-1, 3)), axis=1)
    expected = rig.expression_dirs[jaw].norm(dim=-1).numpy()  # the mesh is the rig's: "aa" is jawOpen at 1
    np.testing.assert_allclose(moved, expected, atol=1e-4)
    assert moved.max() > 0.005  # the mouth really opens
