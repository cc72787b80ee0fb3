"""The anchored video transformer: diffusers' ``WanTransformer3DModel`` with its own block loop.

New inputs reach every block; every new module starts at zero so a stock Wan checkpoint loaded with
``AnchoredWanTransformer.from_pretrained(local_dir)`` computes exactly what the stock model computes until it is
fine-tuned:

- **pose conditioning**: rendered body maps (normals, depth, part colours, face mask) at latent resolution are
  patchified by a zero-init ``Conv3d`` and added to the video tokens;
- **content anchors** ("Gloria"): clean single-frame latents patchified by the *shared* patch embedding,
  appended after the video tokens, each with its own temporal RoPE index outside the window (and an optional
  spatial shift, "AnyAvatar") and timestep 0 (their own AdaLN modulation);
- **clean prefix**: the first ``clean_prefix`` latent frames are given (previous chunk / training prefix) and
  also carry timestep 0;
- **audio**: frame-local cross-attention (the tokens of latent frame f attend only to the audio of window f)
  with a zero-init output projection, optionally gated per token by a face mask, one mask and one audio track
  per character ("AnyAvatar"'s face-aware adapter).

The block loop reproduces ``WanTransformerBlock.forward`` line by line (read from diffusers 0.42) and adds
the audio branch after the text cross-attention, parallel to it ("Gloria").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import WanTransformer3DModel
from jaxtyping import Float
from torch import Tensor, nn

from .rope import RopeSplit, concat_rope, grid_rope

# Names of the modules this file adds (zero-initialised, trained by diffusion/train.py).
NEW_MODULE_PREFIXES = ("pose_embedding", "audio_proj", "audio_blocks")


@dataclass(frozen=True, eq=False)
class AnchorTokens:
    """One content / lookahead anchor: a clean latent frame and where RoPE puts it."""

    latents: Float[Tensor, "B C 1 h w"]
    t_position: float
    h_offset: float = 0.0
    w_offset: float = 0.0


class AudioCrossAttention(nn.Module):
    """Frame-local cross-attention from audio tokens to the video tokens of the aligned latent frame."""

    def __init__(self, dim: int, heads: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.heads = heads
        self.norm = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.norm_q = nn.RMSNorm(dim, eps=eps)
        self.norm_k = nn.RMSNorm(dim, eps=eps)
        self.to_out = nn.Linear(dim, dim)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def forward(
        self,
        video: Float[Tensor, "B L D"],
        audio: Float[Tensor, "B K F A D"],
        gates: Float[Tensor, "B K L"] | None,
    ) -> Float[Tensor, "B L D"]:
        b, length, d = video.shape
        k_tracks, frames, a = audio.shape[1:4]
        hw = length // frames
        h = self.heads
        q = self.norm_q(self.to_q(self.norm(video.float()).type_as(video)))
        q = q.view(b * frames, hw, h, d // h).transpose(1, 2)
        out = torch.zeros_like(video)
        for k in range(k_tracks):
            ctx = audio[:, k].reshape(b * frames, a, d)
            key = self.norm_k(self.to_k(ctx)).view(b * frames, a, h, d // h).transpose(1, 2)
            val = self.to_v(ctx).view(b * frames, a, h, d // h).transpose(1, 2)
            o = self.to_out(F.scaled_dot_product_attention(q, key, val).transpose(1, 2).reshape(b, length, d))
            # gate after the output projection (bias included): a token outside every face mask gets exactly 0
            out = out + (o if gates is None else o * gates[:, k, :, None].to(o.dtype))
        return out


def _modulate(x: Tensor, norm: nn.Module, mods: list[tuple[Tensor, Tensor]], segments: list[tuple[int, int, int]]):
    """``norm(x) * (1 + scale) + shift`` with per-segment (shift, scale) — the stock op when one segment."""
    if len(segments) == 1:
        shift, scale = mods[segments[0][2]]
        return (norm(x.float()) * (1 + scale) + shift).type_as(x)
    parts = [(norm(x[:, s:e].float()) * (1 + mods[g][1]) + mods[g][0]).type_as(x) for s, e, g in segments]
    return torch.cat(parts, dim=1)


def _gated(x: Tensor, y: Tensor, gates: list[Tensor], segments: list[tuple[int, int, int]]) -> Tensor:
    """``x + y * gate`` in float32 with per-segment gates (stock: one segment)."""
    if len(segments) == 1:
        return (x.float() + y.float() * gates[segments[0][2]]).type_as(x)
    parts = [(x[:, s:e].float() + y[:, s:e].float() * gates[g]).type_as(x) for s, e, g in segments]
    return torch.cat(parts, dim=1)


def block_forward(
    block: nn.Module,
    audio_block: AudioCrossAttention | None,
    hidden_states: Tensor,
    encoder_hidden_states: Tensor,
    temb_groups: list[Tensor],
    segments: list[tuple[int, int, int]],
    rotary_emb: tuple[Tensor, Tensor],
    audio: Tensor | None,
    audio_gates: Tensor | None,
    num_video_tokens: int,
) -> Tensor:
    """``WanTransformerBlock.forward`` (temb B 6 D per token group) plus the frame-local audio branch."""
    chunks = [(block.scale_shift_table + t.float()).chunk(6, dim=1) for t in temb_groups]
    msa = [(c[0], c[1]) for c in chunks]
    ffn = [(c[3], c[4]) for c in chunks]
    # 1. Self-attention
    norm_hidden_states = _modulate(hidden_states, block.norm1, msa, segments)
    attn_output = block.attn1(norm_hidden_states, None, None, rotary_emb)
    hidden_states = _gated(hidden_states, attn_output, [c[2] for c in chunks], segments)
    # 2. Cross-attention (text / image), then audio on the video tokens (parallel, own output projection)
    norm_hidden_states = block.norm2(hidden_states.float()).type_as(hidden_states)
    attn_output = block.attn2(norm_hidden_states, encoder_hidden_states, None, None)
    if audio is not None and audio_block is not None:
        audio_out = audio_block(norm_hidden_states[:, :num_video_tokens], audio, audio_gates)
        attn_output = torch.cat([attn_output[:, :num_video_tokens] + audio_out, attn_output[:, num_video_tokens:]], 1)
    hidden_states = hidden_states + attn_output
    # 3. Feed-forward
    norm_hidden_states = _modulate(hidden_states, block.norm3, ffn, segments)
    ff_output = block.ffn(norm_hidden_states)
    return _gated(hidden_states, ff_output, [c[5] for c in chunks], segments)


class AnchoredWanTransformer(WanTransformer3DModel):
    """Wan video transformer with pose, anchor, prefix and audio inputs (see module docstring)."""

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, ...] | list[int] = (1, 2, 2),
        num_attention_heads: int = 40,
        attention_head_dim: int = 128,
        in_channels: int = 16,
        out_channels: int = 16,
        text_dim: int = 4096,
        freq_dim: int = 256,
        ffn_dim: int = 13824,
        num_layers: int = 40,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        image_dim: int | None = None,
        added_kv_proj_dim: int | None = None,
        rope_max_seq_len: int = 1024,
        pos_embed_seq_len: int | None = None,
        pose_channels: int = 8,
        audio_in_dim: int = 80,
    ) -> None:
        super().__init__(
            patch_size, num_attention_heads, attention_head_dim, in_channels, out_channels, text_dim, freq_dim,
            ffn_dim, num_layers, cross_attn_norm, qk_norm, eps, image_dim, added_kv_proj_dim, rope_max_seq_len,
            pos_embed_seq_len,
        )  # fmt: skip
        inner_dim = num_attention_heads * attention_head_dim
        self.rope_split = RopeSplit.for_head_dim(attention_head_dim)
        self.pose_embedding = nn.Conv3d(pose_channels, inner_dim, kernel_size=patch_size, stride=patch_size)
        self.audio_proj = nn.Sequential(nn.Linear(audio_in_dim, inner_dim), nn.GELU(), nn.Linear(inner_dim, inner_dim))
        self.audio_blocks = nn.ModuleList(
            [AudioCrossAttention(inner_dim, num_attention_heads, eps) for _ in range(num_layers)]
        )
        self.zero_init_new_modules()

    @torch.no_grad()
    def zero_init_new_modules(self) -> None:
        """Zero the pose projection and the audio output projections (identity at start of training)."""
        nn.init.zeros_(self.pose_embedding.weight)
        nn.init.zeros_(self.pose_embedding.bias)
        for blk in self.audio_blocks:
            nn.init.zeros_(blk.to_out.weight)
            nn.init.zeros_(blk.to_out.bias)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """diffusers' loader; new modules missing from a stock checkpoint are created and zero-initialised."""
        model, info = super().from_pretrained(pretrained_model_name_or_path, output_loading_info=True, **kwargs)
        missing = [k for k in info["missing_keys"] if not k.startswith(NEW_MODULE_PREFIXES)]
        if missing:
            raise ValueError(f"{pretrained_model_name_or_path}: checkpoint lacks backbone weights {missing[:3]}...")
        if any(k.startswith(NEW_MODULE_PREFIXES) for k in info["missing_keys"]):
            model.materialise_new_modules()
        return model

    @torch.no_grad()
    def materialise_new_modules(self) -> None:
        """Give the new modules real storage (diffusers leaves weights absent from the checkpoint on the meta
        device), initialise them as at construction, then zero the output projections."""
        ref = self.patch_embedding.weight
        for name in NEW_MODULE_PREFIXES:
            module = getattr(self, name)
            module.to_empty(device=ref.device)
            module.to(ref.dtype)
            for sub in module.modules():
                if hasattr(sub, "reset_parameters"):
                    sub.reset_parameters()
        self.zero_init_new_modules()

    def new_module_state_dict(self) -> dict[str, Tensor]:
        return {k: v for k, v in self.state_dict().items() if k.startswith(NEW_MODULE_PREFIXES)}

    def _patchify(self, latents: Tensor) -> Tensor:
        return self.patch_embedding(latents.to(self.patch_embedding.weight.dtype)).flatten(2).transpose(1, 2)

    def _time_groups(self, timestep: Tensor, encoder_hidden_states: Tensor, image: Tensor | None, clean: bool):
        """(temb, timestep_proj) for the noisy tokens and, when ``clean``, for timestep-0 tokens."""
        if not clean:
            temb, proj, enc, img = self.condition_embedder(timestep, encoder_hidden_states, image)
            return [temb], [proj.unflatten(1, (6, -1))], enc, img
        both = torch.stack([timestep, torch.zeros_like(timestep)], dim=1).flatten()
        temb, proj, enc, img = self.condition_embedder(both, encoder_hidden_states, image, timestep_seq_len=2)
        proj = proj.unflatten(2, (6, -1))
        return [temb[:, 0], temb[:, 1]], [proj[:, 0], proj[:, 1]], enc, img

    def forward(
        self,
        hidden_states: Tensor,
        timestep: Tensor,
        encoder_hidden_states: Tensor,
        encoder_hidden_states_image: Tensor | None = None,
        return_dict: bool = True,
        attention_kwargs: dict | None = None,
        *,
        pose_maps: Tensor | None = None,
        audio: Tensor | None = None,
        face_masks: Tensor | None = None,
        anchors: tuple[AnchorTokens, ...] | list[AnchorTokens] = (),
        t_positions: Tensor | None = None,
        clean_prefix: int = 0,
        condition: Tensor | None = None,
    ):
        """Velocity for the video latents.

        Args:
            hidden_states: B C F H W noisy video latents (the first ``clean_prefix`` frames are clean).
            timestep: B, flow-matching timestep in [0, 1000].
            encoder_hidden_states: B S text_dim prompt embeddings (zeros for none).
            pose_maps: B P F H W body maps at latent resolution.
            audio: B K F A audio_in_dim features, window f aligned with latent frame f, one track per character.
            face_masks: B K F H W latent-resolution mask gating track k's audio (None: ungated).
            anchors: content / lookahead anchors (timestep 0, their own RoPE positions).
            t_positions: F temporal RoPE indices of the video frames (default 0..F-1).
            clean_prefix: number of leading latent frames that are given clean (timestep 0).
            condition: B Cc F H W image-to-video channels (first-frame mask + latents, :mod:`.i2v`), required by
                I2V backbones (``in_channels`` > latent channels); content anchors get a given-frame condition.
        """
        if attention_kwargs:
            raise ValueError("attention_kwargs (LoRA scale) are not supported by AnchoredWanTransformer")
        latent_channels = hidden_states.shape[1]
        if latent_channels < self.config.in_channels:
            if condition is None or latent_channels + condition.shape[1] != self.config.in_channels:
                raise ValueError(f"this image-to-video backbone takes {self.config.in_channels} input channels: pass "
                                 f"condition= with {self.config.in_channels - latent_channels} first-frame channels "
                                 "(anchorsplat.diffusion.i2v.first_frame_condition)")  # fmt: skip
            hidden_states = torch.cat([hidden_states, condition.to(hidden_states.dtype)], dim=1)
        batch_size, _, num_frames, height, width = hidden_states.shape
        p_t, p_h, p_w = self.config.patch_size
        ppf, pph, ppw = num_frames // p_t, height // p_h, width // p_w
        if t_positions is None:
            t_positions = torch.arange(ppf, device=hidden_states.device)
        ropes = [grid_rope(self.rope_split, t_positions.to(hidden_states.device), pph, ppw)]
        tokens = [self._patchify(hidden_states)]
        if pose_maps is not None:
            pose = self.pose_embedding(pose_maps.to(self.pose_embedding.weight.dtype)).flatten(2).transpose(1, 2)
            tokens[0] = tokens[0] + pose.to(tokens[0].dtype)
        num_video = tokens[0].shape[1]
        for anchor in anchors:
            lat = anchor.latents.to(hidden_states.dtype)
            if lat.shape[1] < hidden_states.shape[1]:  # I2V: an anchor is a given frame (mask ones + itself)
                mask = lat.new_ones(lat.shape[0], hidden_states.shape[1] - 2 * lat.shape[1], *lat.shape[2:])
                lat = torch.cat([lat, mask, lat], dim=1)
            tokens.append(self._patchify(lat))
            pos = torch.tensor([anchor.t_position], device=hidden_states.device, dtype=torch.float64)
            ropes.append(
                grid_rope(self.rope_split, pos, lat.shape[3] // p_h, lat.shape[4] // p_w, anchor.h_offset,
                          anchor.w_offset)
            )  # fmt: skip
        rotary_emb = concat_rope(ropes)
        hidden = torch.cat(tokens, dim=1).contiguous() if len(tokens) > 1 else tokens[0].contiguous()
        total = hidden.shape[1]
        n_prefix = clean_prefix * (num_video // ppf)
        clean = n_prefix > 0 or total > num_video
        temb, proj, enc, img = self._time_groups(timestep, encoder_hidden_states, encoder_hidden_states_image, clean)
        if img is not None:
            enc = torch.concat([img, enc], dim=1)
        # token segments -> time group (0 noisy, 1 clean): [clean prefix | noisy video | anchors]
        segments = [(s, e, g) for s, e, g in ((0, n_prefix, 1), (n_prefix, num_video, 0), (num_video, total, 1))
                    if e > s]  # fmt: skip

        audio_ctx, gates = None, None
        if audio is not None:
            audio_ctx = self.audio_proj(audio.to(self.audio_proj[0].weight.dtype)).to(hidden.dtype)
            if face_masks is not None:
                gates = face_masks.flatten(2)  # B K (F H W) at token resolution when patch is 1x1
                if gates.shape[-1] != num_video:
                    gates = F.avg_pool3d(face_masks.float(), (p_t, p_h, p_w)).flatten(2)
        for i, block in enumerate(self.blocks):
            args = (block, self.audio_blocks[i], hidden, enc, proj, segments, rotary_emb, audio_ctx, gates, num_video)
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                hidden = self._gradient_checkpointing_func(block_forward, *args)
            else:
                hidden = block_forward(*args)

        # Output norm, projection & unpatchify, for the video tokens only (stock code on that slice).
        hidden = hidden[:, :num_video]
        shift, scale = (self.scale_shift_table.to(temb[0].device) + temb[0].unsqueeze(1)).chunk(2, dim=1)
        shift, scale = shift.to(hidden.device), scale.to(hidden.device)
        hidden = (self.norm_out(hidden.float()) * (1 + scale) + shift).type_as(hidden)
        hidden = self.proj_out(hidden)
        hidden = hidden.reshape(batch_size, ppf, pph, ppw, p_t, p_h, p_w, -1)
        hidden = hidden.permute(0, 7, 1, 4, 2, 5, 3, 6)
        output = hidden.flatten(6, 7).flatten(4, 5).flatten(2, 3)
        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)


def tiny_config(**overrides) -> dict:
    """A tiny random configuration for tests and CPU benchmarks (2 layers, 2 heads of 12 channels)."""
    config = dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=32, ffn_dim=48, num_layers=2, cross_attn_norm=True, eps=1e-6, rope_max_seq_len=64,
        pose_channels=8, audio_in_dim=16,
    )  # fmt: skip
    config.update(overrides)
    return config
