"""Between piano-roll arrays (gan.data's form: MIDI pitch per voice per 16th, 0 = rest, plus
onsets) and the model's tensors: the melody condition, training windows with transposition,
targets, and decoding the generator's logits back to notes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gan.model import ModelConfig

STEPS_PER_BEAT = 4  # 16th-note grid, quarter-note beats
TRANSPOSE_RANGE = (-6, 5)  # semitones: every key, so the model learns intervals, not one key's notes


def meter_features(steps: int, steps_per_bar: int, first_bar_start: int = 0) -> np.ndarray:
    """3 x steps: 1 at bar starts, at quarter beats, at eighths (position within the bar)."""
    position = (np.arange(steps) - first_bar_start) % steps_per_bar
    return np.stack(
        [position == 0, position % STEPS_PER_BEAT == 0, position % (STEPS_PER_BEAT // 2) == 0]
    ).astype(np.float32)


def to_classes(pitches: np.ndarray | torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """MIDI pitches (0 = rest) → class indices (0 = rest, 1.. = low_pitch..high_pitch), clipped."""
    p = torch.as_tensor(np.asarray(pitches), dtype=torch.long)
    classes = (p - config.low_pitch + 1).clamp(1, config.classes - 1)
    return torch.where(p > 0, classes, torch.zeros_like(classes))


def one_hot_voices(classes: torch.Tensor, onsets: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """classes, onsets ... x V x T → ... x V*(classes+1) x T (one-hot and onset per voice)."""
    hot = F.one_hot(classes, config.classes).movedim(-1, -2).float()  # ... x V x C x T
    x = torch.cat([hot, onsets.float().unsqueeze(-2)], -2)
    return x.flatten(-3, -2)


def condition(
    melody: np.ndarray, onsets: np.ndarray, steps_per_bar: int, config: ModelConfig, first_bar_start: int = 0
) -> torch.Tensor:
    """The generator's input for one melody (pitches, onsets [T]) → condition_channels x T."""
    voice = one_hot_voices(to_classes(melody[None], config), torch.as_tensor(onsets[None]), config)
    meter = torch.from_numpy(meter_features(len(melody), steps_per_bar, first_bar_start))
    return torch.cat([voice, meter], 0)


def decode(
    pitch_logits: torch.Tensor, onset_logits: torch.Tensor, config: ModelConfig
) -> tuple[np.ndarray, np.ndarray]:
    """V x C x T logits, V x T onset logits → MIDI pitches uint8 V x T (0 = rest), onsets bool V x T.

    One note per voice per step (the argmax); a note starts where the pitch changes or the
    onset logit says a repeated note starts.
    """
    classes = pitch_logits.argmax(1).cpu().numpy()
    pitches = np.where(classes > 0, classes + config.low_pitch - 1, 0).astype(np.uint8)
    previous = np.concatenate([np.zeros_like(pitches[:, :1]), pitches[:, :-1]], 1)
    onsets = (pitches > 0) & ((pitches != previous) | (onset_logits.cpu().numpy() > 0))
    return pitches, onsets


@dataclass
class Batch:
    condition: torch.Tensor  # B x condition_channels x W
    classes: torch.Tensor  # B x V x W, long (targets)
    onsets: torch.Tensor  # B x V x W, float (targets)
    voices: torch.Tensor  # B x V*(classes+1) x W: Bach's voices as the critic sees them


class Windows:
    """Every beat-aligned window of `config.window` steps of a set of chorales, sampled in
    batches with a random transposition each (kept inside the model's pitch range)."""

    def __init__(self, chorales: Sequence, config: ModelConfig, hop: int = STEPS_PER_BEAT):
        w = config.window
        pitches, onsets, meters = [], [], []
        for c in chorales:
            p, o = np.asarray(c.pitches), np.asarray(c.onsets)
            if p.shape[1] < w:  # a short piece: pad with rests at the end
                p = np.pad(p, ((0, 0), (0, w - p.shape[1])))
                o = np.pad(o, ((0, 0), (0, w - o.shape[1])))
            meter = meter_features(p.shape[1], c.steps_per_bar)
            for start in range(0, p.shape[1] - w + 1, hop):
                if p[0, start : start + w].any():
                    pitches.append(p[:, start : start + w])
                    onsets.append(o[:, start : start + w])
                    meters.append(meter[:, start : start + w])
        if not pitches:
            raise ValueError("no chorale has a window with melody notes")
        self.config = config
        self.pitches = torch.from_numpy(np.stack(pitches).astype(np.int64))  # N x 4 x W
        self.onsets = torch.from_numpy(np.stack(onsets))  # N x 4 x W
        self.meters = torch.from_numpy(np.stack(meters))  # N x 3 x W
        sounding = self.pitches > 0
        big, small = torch.iinfo(torch.int64).max, 0
        lowest = torch.where(sounding, self.pitches, big).flatten(1).min(1).values
        highest = torch.where(sounding, self.pitches, small).flatten(1).max(1).values
        self.min_shift = (config.low_pitch - lowest).clamp(max=0).clamp(min=TRANSPOSE_RANGE[0])
        self.max_shift = (config.high_pitch - highest).clamp(min=0).clamp(max=TRANSPOSE_RANGE[1])

    def __len__(self) -> int:
        return len(self.pitches)

    def sample(self, batch_size: int, generator: torch.Generator, transpose: bool = True) -> Batch:
        index = torch.randint(len(self), (batch_size,), generator=generator)
        pitches = self.pitches[index]
        if transpose:
            lo, hi = self.min_shift[index], self.max_shift[index]
            shift = lo + (torch.rand(batch_size, generator=generator) * (hi - lo + 1)).long()
            pitches = torch.where(pitches > 0, pitches + shift[:, None, None], pitches)
        classes = to_classes(pitches, self.config)
        onsets = self.onsets[index]
        hot = one_hot_voices(classes, onsets, self.config)  # B x 4*(C+1) x W
        melody_width = self.config.voice_channels
        return Batch(
            condition=torch.cat([hot[:, :melody_width], self.meters[index]], 1),
            classes=classes[:, 1:],
            onsets=onsets[:, 1:].float(),
            voices=hot[:, melody_width:],
        )
