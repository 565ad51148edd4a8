"""Between piano-roll arrays (gan.data's form: MIDI pitch per voice per 16th, 0 = rest, plus
onsets) and the model's tensors: the melody condition, training windows with transposition,
targets, and decoding the generator's logits back to notes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product

import numpy as np
import torch
import torch.nn.functional as F

from gan.model import ModelConfig

STEPS_PER_BEAT = 4  # 16th-note grid, quarter-note beats
PERFECT_INTERVALS = (0, 7)  # unison/octave and fifth, as interval classes
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


def parallel_perfects(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Chords [..., V] of MIDI pitches (0 = rest) on two consecutive beats → bool [...]: some pair
    of voices moves the same way from a fifth to a fifth, or an octave/unison to another (the
    definition gan.metrics counts)."""
    i, j = np.triu_indices(before.shape[-1], 1)
    b, a = before.astype(int), after.astype(int)
    sounding = (b[..., i] > 0) & (b[..., j] > 0) & (a[..., i] > 0) & (a[..., j] > 0)
    motion_i, motion_j = np.sign(a[..., i] - b[..., i]), np.sign(a[..., j] - b[..., j])
    same_way = (motion_i == motion_j) & (motion_i != 0)
    interval_before, interval_after = (b[..., i] - b[..., j]) % 12, (a[..., i] - a[..., j]) % 12
    perfect = (interval_before == interval_after) & np.isin(interval_before, PERFECT_INTERVALS)
    return (sounding & same_way & perfect).any(-1)


def avoid_parallels(
    log_probs: np.ndarray, classes: np.ndarray, melody: np.ndarray, config: ModelConfig, candidates: int = 3
) -> np.ndarray:
    """Beat by beat, where the per-voice argmax chord moves in parallel fifths or octaves from
    the previous beat's chord, take instead the most likely chord (sum of the voices'
    log-probabilities) among each voice's `candidates` likeliest pitches that does not. Per-step
    choices are independent per voice, so they cannot learn this one rule of voice leading by
    themselves; every other choice stays the model's. log_probs V x C x T, classes V x T."""
    v, _, t = log_probs.shape
    classes = classes.copy()
    beats = range(0, t, STEPS_PER_BEAT)
    top = np.argsort(-log_probs[:, :, ::STEPS_PER_BEAT], axis=1)[:, :candidates]  # V x K x beats
    combos = np.array(list(product(range(candidates), repeat=v)))  # K^V x V: one candidate per voice
    voices = np.arange(v)

    def chord(step: int, lower: np.ndarray) -> np.ndarray:
        pitches = np.where(lower > 0, lower + config.low_pitch - 1, 0)
        return np.concatenate([np.broadcast_to(melody[step], (*lower.shape[:-1], 1)), pitches], -1)

    previous = None
    for beat, step in enumerate(beats):
        if previous is not None and parallel_perfects(previous, chord(step, classes[:, step])):
            options = top[voices, combos, beat]  # K^V x V classes
            allowed = ~parallel_perfects(previous[None], chord(step, options))
            if allowed.any():
                scores = np.where(allowed, log_probs[voices, options, step].sum(1), -np.inf)
                best = options[scores.argmax()]
                for voice in np.flatnonzero(best != classes[:, step]):
                    run = classes[voice, step:] == classes[voice, step]
                    length = run.argmin() if not run.all() else run.size  # the held note from this beat
                    classes[voice, step : step + length] = best[voice]
        previous = chord(step, classes[:, step])
    return classes


def decode(
    pitch_logits: torch.Tensor,
    onset_logits: torch.Tensor,
    config: ModelConfig,
    melody: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """V x C x T logits, V x T onset logits → MIDI pitches uint8 V x T (0 = rest), onsets bool V x T.

    One note per voice per step: the argmax, with parallel fifths and octaves avoided when the
    melody (MIDI pitches [T]) is given (`avoid_parallels`). A note starts where the pitch
    changes or the onset logit says a repeated note starts.
    """
    classes = pitch_logits.argmax(1).cpu().numpy()
    if melody is not None:
        log_probs = torch.log_softmax(pitch_logits.float(), 1).cpu().numpy()
        classes = avoid_parallels(log_probs, classes, melody, config)
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
