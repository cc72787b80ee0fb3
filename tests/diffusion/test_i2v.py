"""Image-to-video checkpoints (in_channels = latents + mask + latents): the first-frame mask and latents and the
CLIP image embedding reach the transformer as diffusers' WanImageToVideoPipeline builds them, and every later
chunk gets its own first frame (the previous chunk's result)."""

from __future__ import annotations

import pytest
import torch

from anchorsplat.diffusion.anchored import AnchoredConfig, load_anchored_generator
from anchorsplat.diffusion.generator import Anchors, ClipSpec
from anchorsplat.diffusion.latents import encode_video
from anchorsplat.gaussians.conventions import framing_cameras
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.synthetic import synthetic_rig

TINY = AnchoredConfig(width=32, height=32, steps=2, chunk=3, prefix=1, blend=1, lookahead=2)


@pytest.fixture(scope="module")
def i2v_weights(tmp_path_factory):
    from diffusers import AutoencoderKLWan
    from diffusers.models.transformers.transformer_wan import WanTransformer3DModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    from anchorsplat.diffusion.latents import tiny_vae_config

    root = tmp_path_factory.mktemp("wan_i2v_tiny")
    torch.manual_seed(2)
    from anchorsplat.diffusion.model import tiny_config

    cfg = {k: v for k, v in tiny_config().items() if k not in ("pose_channels", "audio_in_dim")}
    cfg.update(in_channels=12, image_dim=32, added_kv_proj_dim=24)  # 4 latents + 4 mask + 4 latents
    WanTransformer3DModel(**cfg).save_pretrained(root / "transformer")
    AutoencoderKLWan(**tiny_vae_config()).save_pretrained(root / "vae")
    clip = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                            image_size=32, patch_size=16)  # fmt: skip
    CLIPVisionModel(clip).eval().save_pretrained(root / "image_encoder")
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        root / "image_processor"
    )
    return root


def test_i2v_folder_needs_its_image_encoder(i2v_weights, tmp_path):
    import shutil

    from anchorsplat.diffusion.weights import check_weights_folder

    assert check_weights_folder(i2v_weights).is_i2v
    for sub in ("transformer", "vae"):
        shutil.copytree(i2v_weights / sub, tmp_path / sub)
    with pytest.raises(ValueError, match="needs image_encoder/"):
        check_weights_folder(tmp_path)


def test_first_frame_condition_and_image_embedding_reach_the_transformer(i2v_weights):
    gen = load_anchored_generator(i2v_weights, device="cpu", config=TINY)
    rig = synthetic_rig()
    spec = ClipSpec("turn", Motion.zeros(17), framing_cameras(rig.vertices_rest, torch.linspace(0, 60, 17),
                                                                width=32, height=32))  # fmt: skip
    photo = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(0))
    inputs, images = [], []
    h1 = gen.transformer.patch_embedding.register_forward_pre_hook(lambda m, a: inputs.append(a[0].clone()))
    h2 = gen.transformer.condition_embedder.register_forward_pre_hook(lambda m, a: images.append(a[2]))
    try:
        clip = gen.generate_clip(rig, spec, gen.encode_anchors(Anchors(photo)), first_frame=photo)
    finally:
        h1.remove()
        h2.remove()
    assert clip.frames.shape == (17, 32, 32, 3)
    video = [x for x in inputs if x.shape[2] == 3]  # windows of 3 latent frames (anchors are single frames)
    assert len(video) == 3 * TINY.steps and all(x.shape[1] == 12 for x in video)
    # window 0: mask ones on latent frame 0 only; latents of [photo, grey x 16] (grey = 0 in [-1, 1] pixels)
    expected = encode_video(gen.vae, torch.cat([photo[None], torch.full((16, 32, 32, 3), 0.5)]))[:, :, :3]
    first = video[0]
    assert torch.equal(first[:, 4:8, 0], torch.ones_like(first[:, 4:8, 0]))
    assert torch.equal(first[:, 4:8, 1:], torch.zeros_like(first[:, 4:8, 1:]))
    torch.testing.assert_close(first[:, 8:12], expected)
    # every later window starts from the previous result: its clean prefix frame, given as its first frame
    for w in (1, 2):
        x = video[w * TINY.steps]
        assert torch.equal(x[:, 4:8, 0], torch.ones_like(x[:, 4:8, 0]))
        assert torch.equal(x[:, 4:8, 1:], torch.zeros_like(x[:, 4:8, 1:]))
        torch.testing.assert_close(x[:, 8:12, 0], x[:, 0:4, 0], rtol=0, atol=0)
    # the CLIP image embedding (penultimate hidden state) of the first frame feeds the image cross-attention
    pixels = gen.image_encoder.processor(images=[(photo * 255).byte().numpy()], return_tensors="pt").pixel_values
    with torch.no_grad():
        want = gen.image_encoder.model(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
    assert all(e is not None for e in images)
    torch.testing.assert_close(images[0], want)
