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

from gan.grid import STEPS_PER_QUARTER
from gan.metrics import PERFECT_INTERVALS  # the parallels the decoder avoids are those counted
from gan.model import ModelConfig

STEPS_PER_BEAT = STEPS_PER_QUARTER  # quarter-note beats
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


# What a pitch change costs the decoder, in nats of the model's log-probability, by where the
# new note starts. A per-step argmax changes pitch wherever two pitches are nearly tied (an alto
# flickering C4 G3 C4 G3 on 16ths: 29 % of lower-voice notes one 16th long on the test split,
# Bach's 2 %). Bach's lower voices change pitch on 75 % of bar lines, 65 % of beats, 23 % of
# eighths and 0.8 % of 16ths (training split), so a change is rewarded on a beat, free on an
# eighth and dear on a 16th, which brings our voices' change rates close to his. Chosen on the
# validation split (mean note length, pitch classes per bar, consonance, similarity): a larger
# beat reward moves on every beat and shortens notes, a dearer eighth holds notes too long.
CHANGE_COST = {"bar": -0.5, "beat": -0.5, "eighth": 0.0, "sixteenth": 3.0}
# Bach repeats a note on 12 % of beats and almost never between beats (0.1 % of eighths, no
# 16th): a repeated note starts only on a beat, where the onset logit is above this (chosen on
# the validation split: 13 % of our notes repeat the one before, Bach's 14 %).
RESTRIKE_LOGIT = 1.5


def change_costs(steps: int, steps_per_bar: int, first_bar_start: int = 0) -> np.ndarray:
    """[steps]: the CHANGE_COST of a note starting at each step (by its metrical position)."""
    bar, beat, eighth = meter_features(steps, steps_per_bar, first_bar_start).astype(bool)
    return np.select(
        [bar, beat, eighth],
        [CHANGE_COST["bar"], CHANGE_COST["beat"], CHANGE_COST["eighth"]],
        CHANGE_COST["sixteenth"],
    )


def smooth_lines(log_probs: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """The most likely class sequence per voice (Viterbi) when a change of class at step t costs
    costs[t]: log_probs V x C x T, costs [T] → classes V x T. Holding or changing are the only
    transitions, so each step is O(C): the best way into a class is to stay in it or to jump from
    the best other class of the step before (https://en.wikipedia.org/wiki/Viterbi_algorithm)."""
    v, c, t = log_probs.shape
    if t == 0:
        return np.zeros((v, 0), dtype=np.int64)
    voices, stay = np.arange(v), np.arange(c)
    back = np.empty((t, v, c), dtype=np.int64)
    score = log_probs[:, :, 0].copy()
    for step in range(1, t):
        # The best other class to jump from: the best, or for the best itself the runner-up (a
        # negative cost is a bonus for changing, which staying must not collect).
        first, second = np.argsort(-score, 1)[:, :2].T  # V, V
        source = np.where(stay[None] == first[:, None], second[:, None], first[:, None])  # V x C
        jump = score[voices[:, None], source] - costs[step]
        back[step] = np.where(score >= jump, stay, source)
        score = np.maximum(score, jump) + log_probs[:, :, step]
    classes = np.empty((v, t), dtype=np.int64)
    classes[:, -1] = score.argmax(1)
    for step in range(t - 1, 0, -1):
        classes[:, step - 1] = back[step, voices, classes[:, step]]
    return classes


def avoid_parallels(
    log_probs: np.ndarray, classes: np.ndarray, melody: np.ndarray, config: ModelConfig, candidates: int = 3
) -> np.ndarray:
    """Beat by beat, where the decoded chord moves in parallel fifths or octaves from the
    previous beat's chord, take instead the most likely chord (sum of the voices'
    log-probabilities) among each voice's `candidates` likeliest pitches that does not. Per-voice
    decoding cannot learn this one rule of voice leading by itself; every other choice stays the
    decoder's. A changed voice changes its whole note, back to where the note starts (but not
    across the previous beat, whose chord is settled), so the repair adds no short note.
    log_probs V x C x T, classes V x T."""
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
                    line = classes[voice]
                    start = step
                    while start > step - STEPS_PER_BEAT + 1 and line[start - 1] == line[step]:
                        start -= 1
                    end = step + 1
                    while end < t and line[end] == line[step]:
                        end += 1
                    line[start:end] = best[voice]
        previous = chord(step, classes[:, step])
    return classes


def perturb(log_probs: np.ndarray, temperature: float, seed: int) -> np.ndarray:
    """Perturb-and-MAP (Papandreou & Yuille 2011): the per-step log-probabilities V x C x T plus
    `temperature` times independent Gumbel noise, drawn by numpy's PCG64 seeded with `seed` (the
    same seed, the same draws, on every run). At a single step the argmax of the sum is a sample
    from softmax(log_probs / temperature) (the Gumbel-max trick); through the Viterbi smoothing
    and the parallel repair that follow, the decoded line is a different but still voice-led
    line for each seed, the likelier lines the likelier. The generator's own noise barely moves
    its output (seeds 0 and 1 differ on 8 % of test-split beats), so this is where a seed's
    variety comes from. Temperature 0 returns log_probs itself (no draw)."""
    if temperature == 0:
        return log_probs
    gumbel = np.random.default_rng(seed % 2**64).gumbel(size=log_probs.shape)  # a negative seed too
    return log_probs + temperature * gumbel


def decode(
    pitch_logits: torch.Tensor,
    onset_logits: torch.Tensor,
    config: ModelConfig,
    melody: np.ndarray | None = None,
    steps_per_bar: int = 4 * STEPS_PER_BEAT,
    first_bar_start: int = 0,
    temperature: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """V x C x T logits, V x T onset logits → MIDI pitches uint8 V x T (0 = rest), onsets bool V x T.

    Per voice, the likeliest line under the model when a pitch change costs CHANGE_COST by its
    place in the bar (`smooth_lines`), with parallel fifths and octaves avoided when the melody
    (MIDI pitches [T]) is given (`avoid_parallels`). A note starts where the pitch changes, or
    where the pitch stays and the onset logit says a repeated note starts.

    `temperature` > 0 decodes a line sampled around the likeliest one instead (`perturb`, seeded
    by `seed`); 0 is the likeliest line itself, and does not look at `seed`.
    """
    log_probs = torch.log_softmax(pitch_logits.float(), 1).cpu().numpy()
    log_probs = perturb(log_probs, temperature, seed)
    steps = log_probs.shape[-1]
    classes = smooth_lines(log_probs, change_costs(steps, steps_per_bar, first_bar_start))
    if melody is not None:
        classes = avoid_parallels(log_probs, classes, melody, config)
    pitches = np.where(classes > 0, classes + config.low_pitch - 1, 0).astype(np.uint8)
    previous = np.concatenate([np.zeros_like(pitches[:, :1]), pitches[:, :-1]], 1)
    on_beat = meter_features(steps, steps_per_bar, first_bar_start)[1].astype(bool)
    restrike = (onset_logits.cpu().numpy() > RESTRIKE_LOGIT) & on_beat
    onsets = (pitches > 0) & ((pitches != previous) | restrike)
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
