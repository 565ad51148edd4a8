"""The U-Net GAN that writes alto, tenor and bass under a melody: generator, critic, config.

Departures from the DeepComposer lab (aws-deepcomposer-samples gan/GAN.ipynb), each for speed or
correctness; the README's model section explains them:
- 1-D convolutions over time with pitches as channels (46 pitches, 36-81, plus rest) instead of
  2-D convolutions over a 128-pitch image: the same musical context for a fraction of the FLOPs.
- Each lower voice is decoded one note at a time: a categorical over rest-or-pitch per step and
  an onset logit (repeated notes stay distinct). The melody passes through unchanged.
- Fully convolutional generator (noise is a per-position tensor at the bottleneck), so it runs
  over a melody of any length; only the critic sees fixed-length training windows.
- The critic sees straight-through one-hot samples of the generator's output, the form of
  Bach's voices, so it cannot tell real from fake by softness alone.

Two sizes (the `model_size` hyperparameter, `MODEL_SIZES`): `small`, the default, trains in about
two minutes on two CPU cores; `large` is wider and has a deeper bottleneck, sized for a GPU. The
config, preset name included, is stored in every checkpoint and model file, so whoever loads one
(gan.generate, the compose function) rebuilds the network it was trained as.

Importing this module does nothing but define classes and a config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelConfig:
    low_pitch: int = 36  # every voice of every chorale in the corpus lies in 36-81
    high_pitch: int = 81
    voices: int = 3  # alto, tenor, bass; the soprano is the condition
    meter_features: int = 3  # bar start, quarter beat, eighth (see encoding.meter_features)
    window: int = 64  # steps (16ths) per training window: 4 bars of 4/4; the critic's input length
    generator_channels: tuple[int, int, int] = (96, 128, 192)
    noise_channels: int = 16  # per bottleneck position (one every 8 steps)
    critic_channels: tuple[int, int, int, int] = (64, 96, 128, 128)
    # One dilated convolution per entry at the bottleneck; each doubling widens its view.
    latent_dilations: tuple[int, ...] = (1, 2, 4)
    size: str = "small"  # the preset it was made from (MODEL_SIZES), for the record

    @classmethod
    def preset(cls, size: str) -> ModelConfig:
        """The config of a `model_size` preset; ValueError names the choices."""
        if size not in MODEL_SIZES:
            raise ValueError(f"model_size must be one of {', '.join(MODEL_SIZES)}, not {size!r}")
        return cls(size=size, **MODEL_SIZES[size])

    @property
    def classes(self) -> int:
        """Rest plus every pitch in range: the categorical each voice chooses from per step."""
        return self.high_pitch - self.low_pitch + 2

    @property
    def voice_channels(self) -> int:
        """One voice as the critic sees it: one-hot over `classes` plus an onset channel."""
        return self.classes + 1

    @property
    def condition_channels(self) -> int:
        """The melody (one-hot plus onset) and the metrical position."""
        return self.voice_channels + self.meter_features

    @property
    def downsampling(self) -> int:
        return 8  # three stride-2 stages: generator input length must be a multiple of this

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        fixed: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**fixed)


# The presets' shapes; anything not named keeps ModelConfig's default. `small` is the defaults
# themselves (the 2-minute CPU model, unchanged). `large` has about 5x its FLOPs per training
# iteration (215 against 40 GFLOP at the default batch, bench/bench_training.py (d)): 2.7x the
# generator's channels (a GPU's matmul units idle at 96-192 channels and a batch of 64), a
# bottleneck two convolutions deeper whose view reaches about 33 bars, and a critic twice as
# wide, so the critic keeps up with the stronger generator.
MODEL_SIZES: dict[str, dict[str, Any]] = {
    "small": {},
    "large": {
        "generator_channels": (256, 384, 512),
        "noise_channels": 32,
        "critic_channels": (128, 192, 256, 256),
        "latent_dilations": (1, 2, 4, 8, 16),
    },
}


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = (kernel - stride) // 2 * dilation if stride > 1 else (kernel - 1) // 2 * dilation
    return nn.Sequential(
        nn.Conv1d(cin, cout, kernel, stride, padding, dilation=dilation, bias=False),
        nn.BatchNorm1d(cout),
        nn.ReLU(inplace=True),
    )


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose1d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm1d(cout), nn.ReLU(inplace=True)
    )


class Generator(nn.Module):
    """U-Net: melody → encoder → latent + noise → decoder with skip connections → 3 voices."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c1, c2, c3 = config.generator_channels
        z = config.noise_channels
        self.encode0 = _conv(config.condition_channels, c1, 5)  # B x c1 x T
        self.encode1 = _conv(c1, c2, 4, 2)  # B x c2 x T/2
        self.encode2 = _conv(c2, c3, 4, 2)  # B x c3 x T/4
        self.encode3 = _conv(c3, c3, 4, 2)  # B x c3 x T/8
        # Dilated convolutions widen the bottleneck's view (small: about 9 bars), enough to hear
        # the key and the phrase, at 1/8 of the time resolution (so nearly free).
        dilations = config.latent_dilations
        self.latent = nn.Sequential(
            *(_conv(c3 + z if i == 0 else c3, c3, 3, dilation=d) for i, d in enumerate(dilations))
        )  # B x c3 x T/8
        self.decode2 = _up(c3, c3)  # B x c3 x T/4, then concatenated with encode2
        self.decode1 = _up(2 * c3, c2)  # B x c2 x T/2, then with encode1
        self.decode0 = _up(2 * c2, c1)  # B x c1 x T, then with encode0
        self.head = nn.Sequential(
            _conv(2 * c1, c1, 3), nn.Conv1d(c1, config.voices * (config.classes + 1), 1)
        )

    def noise_shape(self, batch: int, steps: int) -> tuple[int, int, int]:
        return (batch, self.config.noise_channels, steps // self.config.downsampling)

    def forward(self, condition: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """condition B x condition_channels x T (T a multiple of 8), noise B x z x T/8 →
        (pitch logits B x voices x classes x T, onset logits B x voices x T)."""
        e0 = self.encode0(condition)
        e1 = self.encode1(e0)
        e2 = self.encode2(e1)
        h = self.latent(torch.cat([self.encode3(e2), noise], 1))
        h = torch.cat([self.decode2(h), e2], 1)
        h = torch.cat([self.decode1(h), e1], 1)
        h = torch.cat([self.decode0(h), e0], 1)
        out = self.head(h)  # B x voices*(classes+1) x T
        out = out.view(out.size(0), self.config.voices, self.config.classes + 1, out.size(-1))
        return out[:, :, :-1], out[:, :, -1]


class Critic(nn.Module):
    """Four strided convolutions and a dense layer: a score for (melody, three voices) windows.

    No batch norm: the gradient penalty is per sample (Gulrajani et al. 2017, section 4).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        cin = config.condition_channels + config.voices * config.voice_channels
        layers: list[nn.Module] = []
        for cout in config.critic_channels:
            layers += [nn.Conv1d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            cin = cout
        self.convs = nn.Sequential(*layers)  # B x critic_channels[-1] x window/16
        self.dense = nn.Linear(cin * (config.window // 16), 1)

    def forward(self, condition: torch.Tensor, voices: torch.Tensor) -> torch.Tensor:
        """condition B x condition_channels x window, voices B x voices*voice_channels x window → B."""
        h = self.convs(torch.cat([condition, voices], 1))
        return self.dense(h.flatten(1)).squeeze(1)


def as_critic_input(
    pitch_logits: torch.Tensor, onset_logits: torch.Tensor, hard: bool = True
) -> torch.Tensor:
    """The generator's output in the form of Bach's voices: straight-through one-hot samples
    (https://arxiv.org/abs/1611.01144) so the critic's gradient still reaches the generator.
    → B x voices*voice_channels x T."""
    b, v, c, t = pitch_logits.shape
    pitches = F.gumbel_softmax(pitch_logits.transpose(2, 3), tau=1.0, hard=hard).transpose(2, 3)
    soft = torch.sigmoid(onset_logits)
    onsets = (soft > 0.5).to(soft.dtype) + soft - soft.detach() if hard else soft
    return torch.cat([pitches, onsets.unsqueeze(2)], 2).reshape(b, v * (c + 1), t)


def gradient_penalty(
    critic: Critic, condition: torch.Tensor, real: torch.Tensor, fake: torch.Tensor
) -> torch.Tensor:
    """WGAN-GP: mean (‖∇ critic‖₂ − 1)² at random points between real and fake voices.

    Call it outside autocast with float32 inputs: the penalty differentiates the critic's
    gradient (a double backward), and a gradient norm of about 1 taken in bfloat16 (8 bits of
    mantissa) or float16 would make the penalty mostly rounding."""
    alpha = torch.rand(real.size(0), 1, 1, device=real.device, dtype=real.dtype)
    between = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(condition, between).sum(), between, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
