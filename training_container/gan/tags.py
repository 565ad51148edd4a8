"""The computed tags of a piece (`contracts.datasets`): its mode, key and meter.

The key is the Krumhansl-Schmuckler key-finding algorithm (Krumhansl 1990, "Cognitive
Foundations of Musical Pitch"; https://extras.humdrum.org/man/keycor/): the duration-weighted
pitch-class histogram of all voices is correlated (Pearson) with the Krumhansl-Kessler probe-tone
profile of each of the 24 major and minor keys, and the best correlation wins. It is music21's
`analysis.discrete.KrumhanslSchmuckler` (the same profiles and correlation, duration in quarter
lengths there, 16th steps here: the same proportions), done on the piano roll with numpy because
music21 would first need a Stream per piece (tests/unit/test_gan_tags.py checks that both give
the same key on a sample of chorales).

The meter is the file's main time signature when the reader knows it (a MIDI file's,
`contracts.midi`); Bach's cached chorales keep only their bar length in 16ths, read as quarter
notes where it divides (16 → 4/4, 12 → 3/4), else eighths, else 16ths.
"""

from __future__ import annotations

import numpy as np

from contracts import datasets
from gan.grid import STEPS_PER_QUARTER

# Krumhansl-Kessler probe-tone ratings, from the tonic up (music21's and Humdrum's values).
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# How a tonic is spelled in a tag: the usual name of the key (fewest accidentals in its key
# signature; F# major and Eb minor, of six accidentals either way, as music21 favours them).
MAJOR_TONICS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")


def pitch_class_histogram(pitches: np.ndarray) -> np.ndarray:
    """[12]: how many 16th steps each pitch class sounds, over every voice (pitches [V, T], MIDI
    pitch, 0 = rest): the duration-weighted histogram."""
    sounding = np.asarray(pitches)[np.asarray(pitches) > 0].astype(np.int64)
    return np.bincount(sounding % 12, minlength=12).astype(float)


def _centred_keys(profile: np.ndarray) -> np.ndarray:
    """[12 tonics, 12 pitch classes]: the profile rotated to each tonic, minus its mean."""
    rotated = np.stack([np.roll(profile, tonic) for tonic in range(12)])
    return rotated - rotated.mean(1, keepdims=True)


# [24 keys (C major .. B major, C minor .. B minor), 12 pitch classes], computed once.
_KEYS = np.concatenate([_centred_keys(MAJOR_PROFILE), _centred_keys(MINOR_PROFILE)])
_KEY_NORMS = np.sqrt((_KEYS**2).sum(1))


def correlations(histogram: np.ndarray) -> np.ndarray:
    """[24]: Pearson's r of the histogram with each key's profile (majors, then minors)."""
    centred = np.asarray(histogram, dtype=float) - np.mean(histogram)
    norm = np.sqrt((centred**2).sum())
    return (_KEYS @ centred) / (_KEY_NORMS * norm if norm > 0 else 1.0)


def find_key(histogram: np.ndarray) -> tuple[int, str]:
    """(tonic pitch class 0-11, "major" or "minor") of the best-correlated key; a tie goes to
    the lower tonic, major first. An empty histogram has no key: ValueError."""
    if np.sum(histogram) <= 0:
        raise ValueError("no sounding notes: a key needs notes")
    mode_index, tonic = divmod(int(np.argmax(correlations(histogram))), 12)
    return int(tonic), datasets.MODES[int(mode_index)]


def tonic_name(tonic: int, mode: str) -> str:
    return (MAJOR_TONICS if mode == "major" else MINOR_TONICS)[tonic % 12]


def meter_of_bar(steps_per_bar: int) -> tuple[int, int]:
    """A time signature for a bar of `steps_per_bar` 16ths, in the largest note value that
    divides it (16 → 4/4, 12 → 3/4, 6 → 3/8)."""
    if steps_per_bar % STEPS_PER_QUARTER == 0:
        return steps_per_bar // STEPS_PER_QUARTER, 4
    if steps_per_bar % 2 == 0:
        return steps_per_bar // 2, 8
    return steps_per_bar, 16


def computed_tags(
    pitches: np.ndarray, steps_per_bar: int, time_signature: tuple[int, int] | None = None
) -> list[str]:
    """`mode:…`, `key:…`, `meter:…` of a piece (pitches [V, T]); the meter from
    `time_signature` when known, else from the bar length. A piece without notes has no mode or
    key (the readers refuse such a piece first)."""
    numerator, denominator = time_signature or meter_of_bar(steps_per_bar)
    tags = []
    histogram = pitch_class_histogram(pitches)
    if histogram.sum() > 0:
        tonic, mode = find_key(histogram)
        tags += [datasets.mode_tag(mode), datasets.key_tag(tonic_name(tonic, mode), mode)]
    tags.append(datasets.meter_tag(numerator, denominator))
    return tags
