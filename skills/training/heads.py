"""Policy heads: the networks that map one feature vector to a chunk of future actions.

Every head is a `ChunkPolicy`: it holds the normalisation statistics of its training data
as buffers, maps normalised features ``(B, F)`` to normalised action chunks
``(B, chunk, 7)`` in ``forward``, and defines its own training loss (`training_loss`).
``predict`` wraps both ends: raw features in, raw actions out. `skills.training.train`
fits any head the same way; `skills.training.policy.build_policy` makes the one a
`PolicyConfig` names.

``mlp``
    An MLP (LayerNorm, GELU) from the features to the whole chunk at once; L1 loss.
``transformer``
    ACT-style (Zhao et al., 2023, "Learning Fine-Grained Bimanual Manipulation with
    Low-Cost Hardware"): the features become a few observation tokens read by a
    transformer encoder; a decoder with one learned query per future step attends to them
    and emits that step's action; L1 loss. ACT's CVAE style variable is left out: it models
    the varied styles of human demonstrators, and the demonstrations here come from one
    deterministic expert (at run time ACT sets it to zero anyway).
``diffusion``
    Diffusion Policy (Chi et al., 2023): the chunk is denoised from Gaussian noise,
    conditioned on the features and the diffusion step (DDPM noising, squared-cosine
    schedule), sampled with deterministic DDIM in a few steps. The network predicts the
    clean chunk (Diffusion Policy's ``prediction_type="sample"``), not the noise: with few
    sampling steps, a noise estimate at the noisiest step, where the signal is almost gone,
    turns into a clean-chunk estimate off by several standard deviations (measured: 1.3
    against 0.5 for always answering the mean chunk, with 10 steps). The
    denoiser is a residual MLP on the flattened chunk, not the paper's 1-D temporal U-Net:
    for state inputs and 20-step chunks it is several times cheaper to train on a CPU.
    Sampling starts from noise drawn with the policy's own seed, so a diffusion policy is
    as deterministic as the others.

All three are written on torch directly: LeRobot and robomimic, which ship ACT and
Diffusion Policy, import torchvision, and torchvision has no CPU wheel for this torch.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from skillstack.skills.training.dataset import ACTION_DIM, STD_FLOOR
from skillstack.skills.training.policy_config import PolicyConfig

HEADS = ("mlp", "transformer", "diffusion")
# Defaults that differ per head: hidden width (model width for the transformer), layers
# (encoder and decoder layers each for the transformer), epochs.
HEAD_DEFAULTS: dict[str, dict[str, int]] = {
    "mlp": {"hidden": 256, "layers": 3, "epochs": 30},
    "transformer": {"hidden": 64, "layers": 1, "epochs": 30},
    "diffusion": {"hidden": 256, "layers": 3, "epochs": 60},
}
OBS_TOKENS = 4  # observation tokens of the transformer
ATTENTION_HEADS = 4
DROPOUT = 0.1  # transformer dropout (ACT's)
X0_CLIP = 6.0  # normalised actions: a DDIM step's estimate of the clean chunk is clipped


class ChunkPolicy(nn.Module):
    """Base of every head: normalisation buffers, ``predict``, the head's loss."""

    # The normalisation statistics, registered as buffers (saved with the weights).
    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    action_mean: torch.Tensor
    action_std: torch.Tensor
    history: dict

    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.config = config
        self.history = {}
        for name, size in (("feature", config.feature_dim), ("action", ACTION_DIM)):
            self.register_buffer(f"{name}_mean", torch.zeros(size))
            self.register_buffer(f"{name}_std", torch.ones(size))

    def set_normalisation(self, feature_mean, feature_std, action_mean, action_std) -> None:
        """Store statistics (dimensions with std below `STD_FLOOR` are divided by 1)."""
        for name, value in (
            ("feature_mean", feature_mean),
            ("feature_std", np.where(np.asarray(feature_std) < STD_FLOOR, 1.0, feature_std)),
            ("action_mean", action_mean),
            ("action_std", np.where(np.asarray(action_std) < STD_FLOOR, 1.0, action_std)),
        ):
            getattr(self, name).copy_(torch.as_tensor(np.asarray(value), dtype=torch.float32))

    def normalise_features(self, x: torch.Tensor) -> torch.Tensor:
        """Raw features → network input."""
        return (x - self.feature_mean) / self.feature_std

    def normalise_actions(self, a: torch.Tensor) -> torch.Tensor:
        """Raw actions (..., 7) → network targets."""
        return (a - self.action_mean) / self.action_std

    def training_loss(
        self,
        x: torch.Tensor,
        target: torch.Tensor,
        pad: torch.Tensor,
        generator: torch.Generator,
        *inputs: torch.Tensor,
    ) -> torch.Tensor:
        """The loss minimised in training: masked L1 of ``forward`` against the target chunk
        (normalised; ``pad`` marks steps past an episode's end; ``inputs``: further inputs
        of ``forward``, such as images). Heads may override it."""
        return masked_l1(self(x, *inputs), target, pad)

    @torch.no_grad()
    def predict(self, features: np.ndarray) -> np.ndarray:
        """Raw features (F,) → raw actions (chunk, 7)."""
        x = torch.as_tensor(np.asarray(features, dtype=np.float32)).view(1, -1)
        x = x.to(self.feature_mean.device)
        out = self(self.normalise_features(x))[0] * self.action_std + self.action_mean
        return out.cpu().numpy().astype(float)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """Mean L1 over the chunk steps that are not padding."""
    error = (pred - target).abs().mean(-1)
    keep = (~pad).float()
    return (error * keep).sum() / keep.sum().clamp(min=1.0)


def _mlp(dims: list[int], out: int) -> nn.Sequential:
    blocks: list[nn.Module] = []
    for a, b in itertools.pairwise(dims):
        blocks += [nn.Linear(a, b), nn.LayerNorm(b), nn.GELU()]
    blocks.append(nn.Linear(dims[-1], out))
    return nn.Sequential(*blocks)


class ChunkMLP(ChunkPolicy):
    """MLP: normalised features → ``chunk`` normalised actions."""

    def __init__(self, config: PolicyConfig):
        super().__init__(config)
        dims = [config.feature_dim] + [config.hidden] * config.layers
        self.net = _mlp(dims, config.chunk * ACTION_DIM)

    def forward(self, normalised: torch.Tensor) -> torch.Tensor:
        """Normalised features (B, F) → normalised action chunks (B, chunk, 7)."""
        return self.net(normalised).view(-1, self.config.chunk, ACTION_DIM)


class ChunkTransformer(ChunkPolicy):
    """ACT-style encoder-decoder: observation tokens in, one query per future step out."""

    def __init__(self, config: PolicyConfig):
        super().__init__(config)
        d = config.hidden
        if d % ATTENTION_HEADS:
            raise ValueError(f"transformer width {d} must be a multiple of {ATTENTION_HEADS}")
        self.tokens = nn.Linear(config.feature_dim, OBS_TOKENS * d)
        self.token_pos = nn.Parameter(torch.randn(OBS_TOKENS, d) * 0.02)
        self.queries = nn.Parameter(torch.randn(config.chunk, d) * 0.02)
        layer: dict[str, Any] = {
            "d_model": d,
            "nhead": ATTENTION_HEADS,
            "dim_feedforward": 4 * d,
            "dropout": DROPOUT,
            "activation": "gelu",
            "batch_first": True,
            "norm_first": True,
        }
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(**layer),
            config.layers,
            norm=nn.LayerNorm(d),
            enable_nested_tensor=False,  # not used with norm_first anyway; silences a warning
        )
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(**layer), config.layers, norm=nn.LayerNorm(d)
        )
        self.out = nn.Linear(d, ACTION_DIM)

    def forward(self, normalised: torch.Tensor) -> torch.Tensor:
        """Normalised features (B, F) → normalised action chunks (B, chunk, 7)."""
        b = normalised.shape[0]
        tokens = self.tokens(normalised).view(b, OBS_TOKENS, -1) + self.token_pos
        queries = self.queries.expand(b, -1, -1)
        return self.out(self.decoder(queries, self.encoder(tokens)))


class ChunkDiffusion(ChunkPolicy):
    """Diffusion Policy head: DDPM training on the added noise, DDIM sampling."""

    alphas_cumprod: torch.Tensor

    def __init__(self, config: PolicyConfig):
        super().__init__(config)
        if not 1 <= config.denoise_steps <= config.diffusion_steps:
            raise ValueError(
                f"denoise steps ({config.denoise_steps}) must be 1 to the diffusion steps "
                f"({config.diffusion_steps})"
            )
        self.size = config.chunk * ACTION_DIM
        h = config.hidden
        self.cond = nn.Sequential(nn.Linear(config.feature_dim + h, h), nn.GELU(), nn.Linear(h, h))
        self.inp = nn.Linear(self.size, h)
        self.blocks = nn.ModuleList(_FiLMBlock(h) for _ in range(config.layers))
        self.out = nn.Sequential(nn.LayerNorm(h), nn.Linear(h, self.size))
        self.register_buffer("alphas_cumprod", squared_cosine_schedule(config.diffusion_steps))

    def denoise(self, noisy: torch.Tensor, step: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The clean flat chunk (B, chunk·7) predicted from a noisy one at ``step``."""
        c = self.cond(torch.cat([x, _step_embedding(step, self.config.hidden)], -1))
        h = self.inp(noisy)
        for block in self.blocks:
            h = block(h, c)
        return self.out(h)

    def training_loss(self, x, target, pad, generator, *inputs):
        """MSE of the denoised chunk at a random diffusion step, padded steps masked out."""
        b = x.shape[0]
        clean = target.reshape(b, -1)
        step = torch.randint(
            0, self.config.diffusion_steps, (b,), generator=generator, device=x.device
        )
        noise = torch.randn(clean.shape, generator=generator, device=x.device)
        a = self.alphas_cumprod[step].unsqueeze(-1)
        noisy = a.sqrt() * clean + (1 - a).sqrt() * noise
        error = (self.denoise(noisy, step, x) - clean).pow(2).view(b, -1, ACTION_DIM).mean(-1)
        keep = (~pad).float()
        return (error * keep).sum() / keep.sum().clamp(min=1.0)

    def forward(self, normalised: torch.Tensor) -> torch.Tensor:
        """Normalised features (B, F) → a sampled normalised chunk (B, chunk, 7) (DDIM,
        η = 0, from noise seeded by the config's seed: the same features give the same
        chunk)."""
        b, dev = normalised.shape[0], normalised.device
        generator = torch.Generator(device=dev).manual_seed(self.config.seed)
        sample = torch.randn((b, self.size), generator=generator, device=dev)
        grid = np.linspace(self.config.diffusion_steps - 1, 0, self.config.denoise_steps)
        steps = [int(s) for s in np.rint(grid)]
        for i, t in enumerate(steps):
            a_t = self.alphas_cumprod[t]
            x0 = self.denoise(sample, torch.full((b,), t, device=dev), normalised)
            x0 = x0.clamp(-X0_CLIP, X0_CLIP)
            if i + 1 == len(steps):
                sample = x0
                break
            a_next = self.alphas_cumprod[steps[i + 1]]
            eps = (sample - a_t.sqrt() * x0) / (1 - a_t).sqrt()
            sample = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
        return sample.view(b, self.config.chunk, ACTION_DIM)


class _FiLMBlock(nn.Module):
    """Residual MLP block whose features are scaled and shifted by the conditioning."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.film = nn.Linear(width, 2 * width)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, width))

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond).chunk(2, -1)
        return h + self.mlp(self.norm(h) * (1 + scale) + shift)


def squared_cosine_schedule(steps: int, s: float = 0.008) -> torch.Tensor:
    """ᾱ_t for t = 0 … steps−1 of the squared-cosine noise schedule (Nichol & Dhariwal)."""
    t = torch.arange(steps + 1, dtype=torch.float64) / steps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, 0).float()


def _step_embedding(step: torch.Tensor, width: int) -> torch.Tensor:
    """Sinusoidal embedding (B, width) of integer diffusion steps."""
    half = width // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=step.device) / half)
    angles = step.float().unsqueeze(-1) * freqs
    emb = torch.cat([angles.sin(), angles.cos()], -1)
    return nn.functional.pad(emb, (0, width - 2 * half))


HEAD_CLASSES: dict[str, type[ChunkPolicy]] = {
    "mlp": ChunkMLP,
    "transformer": ChunkTransformer,
    "diffusion": ChunkDiffusion,
}
assert tuple(HEAD_CLASSES) == HEADS
