"""Music metrics of four-voice pieces (soprano = melody; alto, tenor, bass = accompaniment), and a
similarity index against Bach's own harmonisation of the same melodies.

Our own definitions, not the lab's or pypianoroll's: theirs give wrong numbers without an error
(an "empty bar rate" that counts non-empty bars, pitch classes grouped in bins of several
semitones). All numpy, vectorised over a whole validation split at once. A piece is anything with `pitches`
(uint8 [4, T], 0 = rest), `onsets` (bool [4, T]) and `steps_per_bar` on the 16th-note grid.

Per lower voice (alto, tenor, bass; keys `alto_...`, and their mean without a prefix):
- `empty_bar_rate`: share of bars where the melody sounds but this voice does not.
- `pitch_classes_per_bar`: distinct pitch classes the voice sounds in a bar, over bars where it sounds.
- `polyphony`: notes sounding at once, over the voice's sounding steps (on a piano roll, so
  chords count); `single_note_rate`: share of its sounding steps with exactly one note.
- `in_key_ratio`: share of the voice's notes whose pitch class is in the melody's key, the key
  estimated from the melody by Krumhansl-Schmuckler (duration-weighted pitch-class profile
  correlated with the Krumhansl-Kessler profiles); minor = natural minor plus raised 6th and 7th.
Across voices, on beats (every quarter note from the bar line):
- `consonance`: share of sounding voice pairs whose interval is a unison, 3rd, 5th, 6th or
  octave (compound or not), or a 4th between two upper voices (a 4th above the bass is not).
- `voice_crossing`: share of beats with two or more voices sounding where some higher voice
  sounds below a lower one.
- `parallel_fifths_octaves`: share of voice-pair moves (beat to next beat, both voices sounding
  both times, at least one moving) where both move the same way from a 5th to a 5th or an
  octave/unison to an octave/unison.
- `mean_note_length`: mean length of the lower voices' notes, in 16ths.

One module although long: every metric reads the same pooled arrays (`_Pooled`), and the
similarity index and its scales combine all of them; split apart, each part would reach into
the others' internals.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Protocol, SupportsFloat

import numpy as np

from .grid import STEPS_PER_QUARTER

LOWER_VOICES = ("alto", "tenor", "bass")
BEAT_STEPS = STEPS_PER_QUARTER
# Interval classes (semitones mod 12) counted consonant: unison/octave, minor and major 3rd,
# perfect 5th, minor and major 6th. The perfect 4th (5) is consonant only between upper voices.
CONSONANT_INTERVALS = (0, 3, 4, 7, 8, 9)
FOURTH = 5
PERFECT_INTERVALS = (0, 7)  # octave/unison and fifth, for parallels
# Krumhansl & Kessler (1982) key profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 9, 10, 11)  # natural minor plus the raised 6th and 7th

PER_VOICE_METRICS = (
    "empty_bar_rate",
    "pitch_classes_per_bar",
    "polyphony",
    "single_note_rate",
    "in_key_ratio",
)

# How far apart two values of a metric are "far" for the similarity index: the standard
# deviation of the metric across Bach's own chorales, one value per chorale and lower voice
# (`bach_spread`; `python -m gan.metrics` prints it, tests/unit/test_gan_metrics.py re-derives
# it), but at least SCALE_FLOOR for rates that Bach barely varies (he never writes two notes at
# once in a voice, and almost never an empty bar), so they still tolerate a 1 % slip.
SCALE_FLOOR = 0.01
SIMILARITY_SCALES = {
    "empty_bar_rate": 0.01,  # spread 0.007
    "pitch_classes_per_bar": 0.62,
    "polyphony": 0.01,  # spread 0
    "single_note_rate": 0.01,  # spread 0
    "in_key_ratio": 0.062,
    "consonance": 0.027,
    "voice_crossing": 0.034,
    "parallel_fifths_octaves": 0.01,  # spread 0.005
    "mean_note_length": 0.70,
}


class Piece(Protocol):
    """Four voices on the grid: a chorale, a generated piece, `gan.generate.Accompaniment`."""

    @property
    def pitches(self) -> np.ndarray: ...
    @property
    def onsets(self) -> np.ndarray: ...
    @property
    def steps_per_bar(self) -> int: ...


@dataclass
class _Piece:
    pitches: np.ndarray
    onsets: np.ndarray
    steps_per_bar: int


# --- keys ------------------------------------------------------------------------------------


def _scale_table() -> np.ndarray:
    """bool [24, 12]: key k (0-11 major on C..B, 12-23 minor) → pitch classes in its scale."""
    table = np.zeros((24, 12), dtype=bool)
    for tonic in range(12):
        table[tonic, [(tonic + d) % 12 for d in MAJOR_SCALE]] = True
        table[12 + tonic, [(tonic + d) % 12 for d in MINOR_SCALE]] = True
    return table


SCALES = _scale_table()


def _profiles() -> np.ndarray:
    """[24, 12] z-scored key profiles, rows ordered as in `SCALES`."""
    rows = [np.roll(MAJOR_PROFILE, t) for t in range(12)] + [np.roll(MINOR_PROFILE, t) for t in range(12)]
    profiles = np.array(rows)
    return (profiles - profiles.mean(1, keepdims=True)) / profiles.std(1, keepdims=True)


_PROFILES = _profiles()


def estimate_keys(melodies: np.ndarray) -> np.ndarray:
    """Krumhansl-Schmuckler keys of melodies: int [N] in 0-23 (see `SCALES`) from uint8 [N, T]
    lines, each pitch class weighted by how many steps it sounds."""
    melodies = np.atleast_2d(np.asarray(melodies))
    counts = np.zeros((melodies.shape[0], 12))
    rows, steps = np.nonzero(melodies)
    np.add.at(counts, (rows, melodies[rows, steps] % 12), 1)
    centred = counts - counts.mean(1, keepdims=True)
    spread = centred.std(1, keepdims=True)
    centred = np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 0)
    return np.argmax(centred @ _PROFILES.T, axis=1)


def key_name(key: int) -> str:
    names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    return f"{names[key % 12]} {'minor' if key >= 12 else 'major'}"


# --- piano rolls -----------------------------------------------------------------------------


def to_pianoroll(pitches: np.ndarray) -> np.ndarray:
    """Voice lines uint8 [T] or [V, T] → piano roll bool [T, 128] (the union of the voices)."""
    lines = np.atleast_2d(np.asarray(pitches))
    roll = np.zeros((lines.shape[1], 128), dtype=bool)
    voices, steps = np.nonzero(lines)
    roll[steps, lines[voices, steps]] = True
    return roll


def polyphony(roll: np.ndarray) -> float:
    """Mean number of notes sounding at once, over the steps where any sounds (bool [T, 128])."""
    counts = np.asarray(roll).sum(axis=-1)
    sounding = counts > 0
    return float(counts[sounding].mean()) if sounding.any() else math.nan


def single_note_rate(roll: np.ndarray) -> float:
    """Share of sounding steps of a piano roll (bool [T, 128]) with exactly one note."""
    counts = np.asarray(roll).sum(axis=-1)
    sounding = counts > 0
    return float((counts[sounding] == 1).mean()) if sounding.any() else math.nan


# --- pooling pieces --------------------------------------------------------------------------


class _Pooled:
    """All pieces laid end to end on one time axis, with the per-step facts every metric needs."""

    def __init__(self, pieces: Sequence[Piece]):
        if not pieces:
            raise ValueError("metrics need at least one piece")
        self.pitches = np.concatenate([np.asarray(p.pitches) for p in pieces], axis=1).astype(np.int16)
        self.onsets = np.concatenate([np.asarray(p.onsets, dtype=bool) for p in pieces], axis=1)
        if self.pitches.shape[0] != 4 or self.pitches.shape != self.onsets.shape:
            raise ValueError(f"pieces need pitches and onsets of shape [4, T]; got {self.pitches.shape}")
        lengths = np.array([np.asarray(p.pitches).shape[1] for p in pieces])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.piece = np.repeat(np.arange(len(pieces)), lengths)
        local = np.arange(self.pitches.shape[1]) - starts[self.piece]
        bar_len = np.repeat([p.steps_per_bar for p in pieces], lengths)
        bars_before = np.concatenate([[0], np.cumsum(-(-lengths // [p.steps_per_bar for p in pieces]))[:-1]])
        self.bar = bars_before[self.piece] + local // bar_len
        self.n_bars = int(self.bar[-1]) + 1
        self.piece_start = local == 0
        self.sounding = self.pitches > 0
        # A note also starts at each piece's first step, so no note runs across two pieces.
        self.onsets = (self.onsets | self.piece_start) & self.sounding
        self.beats = np.flatnonzero(local % BEAT_STEPS == 0)
        keys = estimate_keys(_padded_melodies(pieces))
        self.in_scale = SCALES[keys[self.piece]]  # [S, 12]


def _padded_melodies(pieces: Sequence[Piece]) -> np.ndarray:
    longest = max(np.asarray(p.pitches).shape[1] for p in pieces)
    melodies = np.zeros((len(pieces), longest), dtype=np.uint8)
    for i, p in enumerate(pieces):
        melodies[i, : np.asarray(p.pitches).shape[1]] = np.asarray(p.pitches)[0]
    return melodies


def _ratio(numerator: SupportsFloat, denominator: SupportsFloat) -> float:
    return float(numerator) / float(denominator) if float(denominator) else math.nan


def _pool(
    pitches: np.ndarray | Sequence[Piece], onsets: np.ndarray | None, steps_per_bar: int | None
) -> _Pooled:
    """Public functions take [4, T] or [N, 4, T] arrays plus steps_per_bar, or a list of pieces."""
    if onsets is None:
        return _Pooled(pitches)  # type: ignore[arg-type]
    pitches, onsets = np.asarray(pitches), np.asarray(onsets, dtype=bool)
    if steps_per_bar is None:
        raise ValueError("steps_per_bar is required with pitch and onset arrays")
    batch = pitches.reshape(-1, *pitches.shape[-2:])
    batch_onsets = onsets.reshape(-1, *onsets.shape[-2:])
    return _Pooled([_Piece(p, o, steps_per_bar) for p, o in zip(batch, batch_onsets, strict=True)])


# --- per lower voice -------------------------------------------------------------------------


def _empty_bar_rate(pool: _Pooled, voice: int) -> float:
    melody_bars = np.bincount(pool.bar, weights=pool.sounding[0], minlength=pool.n_bars) > 0
    voice_bars = np.bincount(pool.bar, weights=pool.sounding[voice], minlength=pool.n_bars) > 0
    return _ratio(np.sum(melody_bars & ~voice_bars), np.sum(melody_bars))


def _pitch_classes_per_bar(pool: _Pooled, voice: int) -> float:
    used = np.zeros((pool.n_bars, 12), dtype=bool)
    steps = np.flatnonzero(pool.sounding[voice])
    used[pool.bar[steps], pool.pitches[voice, steps] % 12] = True
    per_bar = used.sum(1)
    return _ratio(per_bar.sum(), np.count_nonzero(per_bar))


def _in_key_ratio(pool: _Pooled, voice: int) -> float:
    notes = np.flatnonzero(pool.onsets[voice])
    return _ratio(pool.in_scale[notes, pool.pitches[voice, notes] % 12].sum(), notes.size)


def _roll_figures(pool: _Pooled, voice: int) -> tuple[float, float]:
    roll = to_pianoroll(pool.pitches[voice].astype(np.uint8))
    return polyphony(roll), single_note_rate(roll)


def _mean_of_known(values: Sequence[float]) -> float:
    """Mean of the values that are not NaN (a voice without notes has no in-key ratio); NaN if none."""
    known = [v for v in values if not math.isnan(v)]
    return float(np.mean(known)) if known else math.nan


def per_voice(pool: _Pooled) -> dict[str, float]:
    values: dict[str, float] = {}
    for offset, name in enumerate(LOWER_VOICES):
        voice = offset + 1
        values[f"{name}_empty_bar_rate"] = _empty_bar_rate(pool, voice)
        values[f"{name}_pitch_classes_per_bar"] = _pitch_classes_per_bar(pool, voice)
        values[f"{name}_polyphony"], values[f"{name}_single_note_rate"] = _roll_figures(pool, voice)
        values[f"{name}_in_key_ratio"] = _in_key_ratio(pool, voice)
    for metric in PER_VOICE_METRICS:
        values[metric] = _mean_of_known([values[f"{name}_{metric}"] for name in LOWER_VOICES])
    return values


# --- across voices ---------------------------------------------------------------------------

_PAIRS = np.array(list(combinations(range(4), 2)))  # (higher voice, lower voice), 6 pairs


def _consonance(pool: _Pooled) -> float:
    chords = pool.pitches[:, pool.beats]  # [4, B]
    upper, lower = chords[_PAIRS[:, 0]], chords[_PAIRS[:, 1]]  # [6, B]
    both = (upper > 0) & (lower > 0)
    interval = np.abs(upper - lower) % 12
    with_bass = (_PAIRS[:, 1] == 3)[:, None]
    consonant = np.isin(interval, CONSONANT_INTERVALS) | ((interval == FOURTH) & ~with_bass)
    return _ratio(np.sum(consonant & both), np.sum(both))


def _voice_crossing(pool: _Pooled) -> float:
    chords = pool.pitches[:, pool.beats]
    upper, lower = chords[_PAIRS[:, 0]], chords[_PAIRS[:, 1]]
    crossed = ((upper > 0) & (lower > 0) & (upper < lower)).any(axis=0)
    counted = (chords > 0).sum(axis=0) >= 2
    return _ratio(np.sum(crossed & counted), np.sum(counted))


def _parallel_fifths_octaves(pool: _Pooled) -> float:
    chords = pool.pitches[:, pool.beats]
    # Consecutive beats of the same piece only.
    same_piece = pool.piece[pool.beats][1:] == pool.piece[pool.beats][:-1]
    upper, lower = chords[_PAIRS[:, 0]], chords[_PAIRS[:, 1]]
    sounding = (upper > 0) & (lower > 0)
    both = sounding[:, :-1] & sounding[:, 1:] & same_piece
    up_move, low_move = np.diff(upper, axis=1), np.diff(lower, axis=1)
    moves = both & ((up_move != 0) | (low_move != 0))
    interval = np.abs(upper - lower) % 12
    perfect = np.isin(interval[:, :-1], PERFECT_INTERVALS) & (interval[:, :-1] == interval[:, 1:])
    parallel = moves & perfect & (np.sign(up_move) == np.sign(low_move)) & (up_move != 0)
    return _ratio(np.sum(parallel), np.sum(moves))


def _mean_note_length(pool: _Pooled) -> float:
    lengths = []
    for voice in range(1, 4):
        starts = np.flatnonzero(pool.onsets[voice])
        boundaries = np.append(
            np.flatnonzero(pool.onsets[voice] | ~pool.sounding[voice]), pool.pitches.shape[1]
        )
        lengths.append(boundaries[np.searchsorted(boundaries, starts, side="right")] - starts)
    joined = np.concatenate(lengths)
    return float(joined.mean()) if joined.size else math.nan


def across_voices(pool: _Pooled) -> dict[str, float]:
    return {
        "consonance": _consonance(pool),
        "voice_crossing": _voice_crossing(pool),
        "parallel_fifths_octaves": _parallel_fifths_octaves(pool),
        "mean_note_length": _mean_note_length(pool),
    }


# --- public per-metric functions ([4, T] or [N, 4, T] arrays, or a list of pieces) ----------


def empty_bar_rate(pitches, onsets=None, steps_per_bar: int | None = None) -> np.ndarray:
    """Per lower voice (alto, tenor, bass): share of the melody's bars where the voice is silent."""
    pool = _pool(pitches, onsets, steps_per_bar)
    return np.array([_empty_bar_rate(pool, v) for v in (1, 2, 3)])


def pitch_classes_per_bar(pitches, onsets=None, steps_per_bar: int | None = None) -> np.ndarray:
    """Per lower voice: distinct pitch classes in a bar, over the bars where the voice sounds."""
    pool = _pool(pitches, onsets, steps_per_bar)
    return np.array([_pitch_classes_per_bar(pool, v) for v in (1, 2, 3)])


def in_key_ratio(pitches, onsets=None, steps_per_bar: int | None = None) -> np.ndarray:
    """Per lower voice: share of its notes in the key estimated from the melody."""
    pool = _pool(pitches, onsets, steps_per_bar)
    return np.array([_in_key_ratio(pool, v) for v in (1, 2, 3)])


def consonance(pitches, onsets=None, steps_per_bar: int | None = None) -> float:
    """Share of sounding voice pairs on beats that are consonant (see the module docstring)."""
    return _consonance(_pool(pitches, onsets, steps_per_bar))


def voice_crossing(pitches, onsets=None, steps_per_bar: int | None = None) -> float:
    """Share of beats (two or more voices sounding) with a crossed voice pair."""
    return _voice_crossing(_pool(pitches, onsets, steps_per_bar))


def parallel_fifths_octaves(pitches, onsets=None, steps_per_bar: int | None = None) -> float:
    """Share of voice-pair moves between beats that are parallel 5ths or octaves."""
    return _parallel_fifths_octaves(_pool(pitches, onsets, steps_per_bar))


def mean_note_length(pitches, onsets=None, steps_per_bar: int | None = None) -> float:
    """Mean length of the lower voices' notes, in 16ths."""
    return _mean_note_length(_pool(pitches, onsets, steps_per_bar))


# --- the whole evaluation --------------------------------------------------------------------


def describe(pieces: Sequence[Piece]) -> dict[str, float]:
    """Every metric over `pieces` (see the module docstring for the keys)."""
    pool = _Pooled(pieces)
    return {**per_voice(pool), **across_voices(pool)}


def similarity(values: Mapping[str, float], bach: Mapping[str, float]) -> float:
    """The similarity index, in [0, 1]: how close a set of pieces is to Bach on the same melodies.

    Each metric m gives a closeness c_m = exp(-|x_m - bach_m| / scale_m), where x_m is the
    metric over the generated pieces, bach_m the same metric over Bach's harmonisations of the
    same melodies, and scale_m the spread (standard deviation) of m across Bach's own chorales
    (`SIMILARITY_SCALES`): a metric one Bach-spread away scores e^-1 = 0.37. Per-voice metrics
    take the mean over alto, tenor and bass. The index is the mean of three equally weighted
    groups, each the mean of its closenesses, so that an easily matched texture cannot outweigh
    wrong harmony:
    - harmony: in-key ratio, consonance;
    - voice leading: voice crossing, parallel 5ths/octaves;
    - texture: empty bars, one note at a time (polyphony and single-note rate, as one),
      pitch classes per bar, mean note length.
    1 means indistinguishable from Bach on every metric; a missing value (no notes) counts 0.
    """
    closeness = {}
    for metric, scale in SIMILARITY_SCALES.items():
        keys = [f"{name}_{metric}" for name in LOWER_VOICES] if metric in PER_VOICE_METRICS else [metric]
        terms = [math.exp(-abs(values[k] - bach[k]) / scale) for k in keys]
        closeness[metric] = float(np.mean([0.0 if math.isnan(t) else t for t in terms]))
    one_note = (closeness["polyphony"] + closeness["single_note_rate"]) / 2
    groups = (
        (closeness["in_key_ratio"], closeness["consonance"]),
        (closeness["voice_crossing"], closeness["parallel_fifths_octaves"]),
        (
            closeness["empty_bar_rate"],
            one_note,
            closeness["pitch_classes_per_bar"],
            closeness["mean_note_length"],
        ),
    )
    return float(np.mean([np.mean(group) for group in groups]))


def chord_agreement(generated: Sequence[Piece], bach: Sequence[Piece]) -> float:
    """Share of beats where the generated chord's pitch classes (all four voices) are exactly
    Bach's own on the same melody, over the beats where Bach's lower voices sound."""
    agree = counted = 0
    for ours, theirs in zip(generated, bach, strict=True):
        ours_p, theirs_p = np.asarray(ours.pitches), np.asarray(theirs.pitches)
        if ours_p.shape != theirs_p.shape:
            raise ValueError(f"a generated piece has shape {ours_p.shape} but Bach's has {theirs_p.shape}")
        beats = np.arange(0, ours_p.shape[1], BEAT_STEPS)
        ours_pc, theirs_pc = _chroma(ours_p[:, beats]), _chroma(theirs_p[:, beats])
        counted_beats = (theirs_p[1:, beats] > 0).any(axis=0)
        agree += int(np.sum((ours_pc == theirs_pc).all(axis=1) & counted_beats))
        counted += int(np.sum(counted_beats))
    return _ratio(agree, counted)


def _chroma(chords: np.ndarray) -> np.ndarray:
    """[V, B] pitches → bool [B, 12] pitch classes sounding."""
    chroma = np.zeros((chords.shape[1], 12), dtype=bool)
    voices, beats = np.nonzero(chords)
    chroma[beats, chords[voices, beats] % 12] = True
    return chroma


def tonic_triad(piece: Piece) -> _Piece:
    """The baseline: the melody kept, the lower voices holding the tonic triad of the melody's
    key in close position just under the melody's lowest note (alto and tenor on the highest
    chord tones below it, the bass on the root below them), re-struck every bar, sounding in
    every bar where the melody sounds."""
    pitches = np.asarray(piece.pitches)
    key = int(estimate_keys(pitches[0][None])[0])
    tonic = key % 12
    chord_tones = {tonic, (tonic + (3 if key >= 12 else 4)) % 12, (tonic + 7) % 12}
    lowest = int(pitches[0][pitches[0] > 0].min()) if pitches[0].any() else 72
    alto = max(p for p in range(lowest - 12, lowest + 1) if p % 12 in chord_tones)
    tenor = max(p for p in range(alto - 12, alto) if p % 12 in chord_tones)
    bass = max(p for p in range(tenor - 12, tenor) if p % 12 == tonic)
    steps = pitches.shape[1]
    bar_of = np.arange(steps) // piece.steps_per_bar
    bars_with_melody = np.bincount(bar_of, weights=pitches[0] > 0) > 0
    sounding = bars_with_melody[bar_of]
    lower = np.where(sounding, np.array([alto, tenor, bass], dtype=np.uint8)[:, None], 0).astype(np.uint8)
    lower_onsets = sounding & (np.arange(steps) % piece.steps_per_bar == 0)
    return _Piece(
        np.concatenate([pitches[:1], lower]),
        np.concatenate(
            [np.asarray(piece.onsets, dtype=bool)[:1], np.broadcast_to(lower_onsets, lower.shape)]
        ),
        piece.steps_per_bar,
    )


def evaluate(pieces: Sequence[Piece], reference: Sequence[Piece] | None = None) -> dict[str, float]:
    """Every metric over `pieces`; with `reference` (Bach's harmonisations of the same melodies,
    in the same order) also `similarity` and `chord_agreement`. Keys are stable snake_case."""
    values = describe(pieces)
    if reference is not None:
        values["similarity"] = similarity(values, describe(reference))
        values["chord_agreement"] = chord_agreement(pieces, reference)
    return values


def bach_spread(pieces: Sequence[Piece]) -> dict[str, float]:
    """The similarity scales: standard deviation of each metric across pieces, one value per
    piece (per-voice metrics: per piece and lower voice), at least `SCALE_FLOOR`."""
    per_piece = [describe([p]) for p in pieces]
    spread = {}
    for metric in SIMILARITY_SCALES:
        keys = [f"{name}_{metric}" for name in LOWER_VOICES] if metric in PER_VOICE_METRICS else [metric]
        spread[metric] = max(float(np.nanstd([v[k] for v in per_piece for k in keys])), SCALE_FLOOR)
    return spread


def main() -> int:
    """Bach's values over every chorale, and the spreads behind `SIMILARITY_SCALES`."""
    from .data import load_chorales

    splits = load_chorales()
    chorales = splits.train + splits.validation + splits.test
    four_four = [c for c in chorales if c.steps_per_bar == 16]
    for label, pieces in (("all chorales", chorales), ("4/4 chorales", four_four)):
        print(f"{label} ({len(pieces)}):")
        for key, value in describe(pieces).items():
            print(f"  {key:32s} {value:.4f}")
    print("spread across chorales (similarity scales):")
    for key, value in bach_spread(chorales).items():
        print(f"  {key:32s} {value:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
