"""The DeepComposer lab's WGAN-GP at its own sizes, in plain PyTorch: the comparison model of
bench_training.py's throughput figures. A different model from gan.model on purpose (a 128-pitch
piano-roll image, 2-D convolutions), so it shares no code with the training package."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class LabGenerator(nn.Module):
    """The lab's U-Net at its sizes: 32 steps x 128 pitches, 4 strided 2-D convolutions down
    (64/128/256/512, kernel 4), noise 2x8x512 at the bottleneck, 3 upsampling blocks with skip
    connections and an output block, tanh over all four tracks. About 8.2 M parameters."""

    def __init__(self) -> None:
        super().__init__()

        def down(cin: int, cout: int) -> nn.Module:
            return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))

        def up(cin: int, cout: int) -> nn.Module:
            return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.ReLU())

        self.downs = nn.ModuleList([down(1, 64), down(64, 128), down(128, 256), down(256, 512)])
        self.ups = nn.ModuleList([up(1024, 256), up(512, 128), up(256, 64)])
        self.out = nn.ConvTranspose2d(128, 4, 4, 2, 1)

    def forward(self, melody: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        skips, h = [], melody  # B x 1 x 32 x 128
        for layer in self.downs:
            h = layer(h)
            skips.append(h)
        h = torch.cat([h, noise], 1)  # B x 1024 x 2 x 8
        for layer, skip in zip(self.ups, reversed(skips[:-1]), strict=True):
            h = torch.cat([layer(h), skip], 1)
        return torch.tanh(self.out(h))  # B x 4 x 32 x 128


class LabCritic(nn.Module):
    """The lab's critic: melody + 4 tracks as 5 channels, 4 strided convolutions (64-512), a
    dense layer to one value, no batch norm. About 2.8 M parameters."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cin, cout in ((5, 64), (64, 128), (128, 256), (256, 512)):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2)]
        self.convs = nn.Sequential(*layers)
        self.dense = nn.Linear(512 * 2 * 8, 1)

    def forward(self, melody: torch.Tensor, tracks: torch.Tensor) -> torch.Tensor:
        return self.dense(self.convs(torch.cat([melody, tracks], 1)).flatten(1)).squeeze(1)


def lab_steps(batch_size: int, device: torch.device) -> tuple[Callable[[], None], Callable[[], None]]:
    """(one critic step, one generator step) of the lab's WGAN-GP at its sizes."""
    torch.manual_seed(0)
    generator, critic = LabGenerator().to(device), LabCritic().to(device)
    g_opt = torch.optim.Adam(generator.parameters(), 0.001, betas=(0.5, 0.9))
    c_opt = torch.optim.Adam(critic.parameters(), 0.001, betas=(0.5, 0.9))
    melody = torch.rand(batch_size, 1, 32, 128, device=device).sign()
    real = torch.rand(batch_size, 4, 32, 128, device=device).sign()

    def critic_step() -> None:
        with torch.no_grad():
            fake = generator(melody, torch.randn(batch_size, 512, 2, 8, device=device))
        alpha = torch.rand(batch_size, 1, 1, 1, device=device)
        between = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(melody, between).sum(), between, create_graph=True)
        penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        loss = critic(melody, fake).mean() - critic(melody, real).mean() + 10 * penalty
        c_opt.zero_grad(set_to_none=True)
        loss.backward()
        c_opt.step()

    def generator_step() -> None:
        loss = -critic(melody, generator(melody, torch.randn(batch_size, 512, 2, 8, device=device))).mean()
        g_opt.zero_grad(set_to_none=True)
        loss.backward()
        g_opt.step()

    return critic_step, generator_step
