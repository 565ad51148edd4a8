"""The 16th-note grid every part of the package shares: how timed notes become a voice line.

A line is two arrays over grid steps: `pitches` (uint8, the MIDI pitch sounding, 0 = rest) and
`onsets` (bool, True where a note starts). The onset channel keeps repeated notes distinct:
13.6 % of Bach's notes repeat the previous pitch, and a plain "sounding" roll would merge them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

STEPS_PER_QUARTER = 4  # a 16th-note grid
# Offsets from score and MIDI readers carry float noise; a note starting 1e-6 after a grid
# point belongs to that grid point.
_EPSILON = 1e-6


def first_step(position: float) -> int:
    """The first grid step at or after `position` (in steps)."""
    return math.ceil(position - _EPSILON)


def render_line(
    n_steps: int, notes: Iterable[tuple[float, float, int, bool]]
) -> tuple[np.ndarray, np.ndarray]:
    """Sample timed notes on the grid: each step sounds the note playing at the step's start.

    `notes` are (start, end, midi_pitch, continues_tie) in grid steps. A note covers the steps
    whose start lies in [start, end): notes shorter than a 16th that cover no grid point (the
    corpus has 18 thirty-second notes and 3 grace notes) vanish and their neighbour fills the
    step, which keeps every voice on the grid without inventing rhythm. Where notes overlap
    (a chord), the highest pitch wins: a line keeps its top note. A note's first covered step
    is an onset unless it continues a tie; any change of pitch is an onset as well.
    """
    pitches = np.zeros(n_steps, dtype=np.uint8)
    onsets = np.zeros(n_steps, dtype=bool)
    # Ascending pitch order, so a higher note written later overwrites a lower one.
    for start, end, pitch, tied in sorted(notes, key=lambda note: note[2]):
        begin, stop = first_step(start), min(first_step(end), n_steps)
        if stop <= begin or not 0 < pitch < 128:
            continue
        pitches[begin:stop] = pitch
        onsets[begin:stop] = False
        onsets[begin] = not tied
    return pitches, normalise_onsets(pitches, onsets)


def normalise_onsets(pitches: np.ndarray, onsets: np.ndarray) -> np.ndarray:
    """Onsets only where a note sounds, and wherever the sounding pitch changes (any axis-0 batch)."""
    sounding = pitches > 0
    changed = np.ones_like(sounding)
    changed[..., 1:] = pitches[..., 1:] != pitches[..., :-1]
    return (onsets | changed) & sounding


def note_spans(pitches: np.ndarray, onsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One voice line → (start step, end step, pitch) of each note: a note runs from its onset to
    the next onset or rest."""
    pitches = np.asarray(pitches)
    starts_mask = normalise_onsets(pitches, np.asarray(onsets, dtype=bool))
    starts = np.flatnonzero(starts_mask)
    # A note ends where the next note starts or the line falls silent.
    boundaries = np.flatnonzero(starts_mask | (pitches == 0))
    boundaries = np.append(boundaries, pitches.shape[0])
    ends = boundaries[np.searchsorted(boundaries, starts, side="right")]
    return starts, ends, pitches[starts]
