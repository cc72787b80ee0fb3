"""scripts/prompt_embeds.py on a tiny local UMT5 encoder + tokenizer (built in code), and the generator loading
the file by default."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "prompt_embeds.py"


def _script():
    spec = importlib.util.spec_from_file_location("prompt_embeds", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def text_encoder(tmp_path_factory):
    """A diffusers-Wan-like text_encoder/ (UMT5, d_model 16 = the tiny transformer's text_dim) + tokenizer/."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    root = tmp_path_factory.mktemp("umt5")
    words = ["<pad>", "</s>", "<unk>", "a", "person", "talking", "blurry", "face"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(root / "tokenizer")
    torch.manual_seed(0)
    cfg = UMT5Config(vocab_size=len(words), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    UMT5EncoderModel(cfg).eval().save_pretrained(root / "text_encoder")
    return root


def test_script_writes_wan_style_embeddings_and_the_generator_loads_them(text_encoder, tiny_weights, tmp_path):
    from anchorsplat.diffusion.anchored import load_anchored_generator
    from anchorsplat.diffusion.text import encode_prompts, load_text_encoder

    weights = tmp_path / "weights"
    shutil.copytree(tiny_weights, weights)
    argv = ["--weights", str(weights), "--text-encoder", str(text_encoder / "text_encoder"), "--prompt",
            "a  person talking", "--negative-prompt", "blurry face", "--max-length", "8"]  # fmt: skip
    out = _script().main(argv)
    from safetensors.torch import load_file

    embeds = load_file(str(out))
    assert embeds["prompt"].shape == (8, 16) and embeds["null"].shape == (8, 16)
    tokenizer, encoder = load_text_encoder(text_encoder / "text_encoder")
    ids = tokenizer(["a person talking"], return_tensors="pt").input_ids
    n = ids.shape[1]  # 3 words (this tokenizer adds no </s>)
    assert n == 3
    with torch.no_grad():
        hidden = encoder(ids).last_hidden_state[0]
    # the prompt's own positions carry the encoder output (padding is masked out), the rest is exactly zero
    torch.testing.assert_close(embeds["prompt"][:n], hidden, atol=1e-5, rtol=1e-5)
    assert torch.equal(embeds["prompt"][n:], torch.zeros(8 - n, 16))  # not the encoder output at padding
    torch.testing.assert_close(embeds["null"], encode_prompts(tokenizer, encoder, ["blurry face"], 8)[0])
    gen = load_anchored_generator(weights, device="cpu")
    assert torch.equal(gen.prompt[0], embeds["prompt"]) and torch.equal(gen.null_prompt[0], embeds["null"])


def test_wrong_width_embeddings_are_refused(tiny_weights, tmp_path):
    from safetensors.torch import save_file

    from anchorsplat.diffusion.anchored import load_anchored_generator

    weights = tmp_path / "weights"
    shutil.copytree(tiny_weights, weights)
    save_file({"prompt": torch.zeros(8, 32)}, str(weights / "prompt_embeds.safetensors"))
    with pytest.raises(ValueError, match="wants S x 16"):
        load_anchored_generator(weights, device="cpu")


def test_missing_text_encoder_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        _script().main(["--weights", str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("anchorsplat: error:") and "\n" not in err
