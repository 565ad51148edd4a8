"""Computed tags: Krumhansl-Schmuckler keys on hand-made pieces and on chorales whose key is known,
the same answers as music21's own implementation, and meters."""

from __future__ import annotations

import numpy as np
import pytest

from gan import data as gan_data
from gan import tags


def line(pitches: list[int], steps_each: int = 4) -> np.ndarray:
    """One voice [1, T] holding each pitch for `steps_each` 16ths."""
    return np.repeat(np.array(pitches, dtype=np.uint8), steps_each)[None]


@pytest.fixture(scope="module")
def chorales() -> dict[str, gan_data.Chorale]:
    gan_data.load_chorales()  # builds the cache on first use
    return {c.name: c for c in gan_data.read_chorales(gan_data.cache_path())}


def test_a_c_major_scale_is_c_major_in_four_four():
    scale = line([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60, 60])

    assert tags.computed_tags(scale, 16) == ["mode:major", "key:c-major", "meter:4/4"]


def test_a_minor_piece_with_raised_sevenths_is_a_minor():
    # A C E D C B A G# A C B A over a tonic-dominant bass: C major's notes but for the G#,
    # told from C major by the weight of A and E and by the leading note
    melody = line([69, 72, 76, 74, 72, 71, 69, 68, 69, 72, 71, 69])
    bass = line([57, 57, 45, 53, 52, 52, 45, 52, 45, 48, 52, 45])

    assert tags.computed_tags(np.concatenate([melody, bass]), 12) == [
        "mode:minor",
        "key:a-minor",
        "meter:3/4",
    ]


def test_keys_are_spelled_as_their_usual_names_and_lower_cased():
    b_flat_major = line([70, 72, 74, 75, 77, 79, 81, 82, 77, 70, 70])
    f_sharp_minor = line([66, 68, 69, 71, 73, 74, 77, 78, 73, 66, 66, 66])

    assert "key:bb-major" in tags.computed_tags(b_flat_major, 16)
    assert "key:f#-minor" in tags.computed_tags(f_sharp_minor, 16)


def test_the_meter_is_the_files_time_signature_when_known_else_the_bar_length():
    piece = line([60, 64, 67])

    assert tags.computed_tags(piece, 12, (6, 8))[-1] == "meter:6/8"
    assert [tags.meter_of_bar(steps) for steps in (16, 12, 24, 6, 7)] == [
        (4, 4),
        (3, 4),
        (6, 4),
        (3, 8),
        (7, 16),
    ]


def test_a_piece_without_notes_has_a_meter_but_no_key():
    assert tags.computed_tags(np.zeros((4, 32), dtype=np.uint8), 16) == ["meter:4/4"]
    with pytest.raises(ValueError, match="no sounding notes"):
        tags.find_key(np.zeros(12))


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("bwv1.6", "key:f-major"),  # Wie schön leuchtet der Morgenstern, F major
        ("bwv227.1", "key:e-minor"),  # Jesu, meine Freude, E minor
        ("bwv248.64-6", "key:d-major"),  # Christmas Oratorio's closing chorale, D major
        ("bwv244.62", "key:a-minor"),  # St Matthew Passion, Wenn ich einmal soll scheiden
    ],
)
def test_chorales_whose_key_is_known(chorales, name, key):
    assert key in tags.computed_tags(chorales[name].pitches, chorales[name].steps_per_bar)


def test_the_numpy_key_finder_agrees_with_music21_on_a_sample_of_chorales(chorales):
    from music21 import analysis, note, stream

    sample = sorted(chorales)[::17]  # 24 chorales across the catalogue
    for name in sample:
        chorale = chorales[name]
        score = stream.Score()
        for pitches, onsets in zip(chorale.pitches, chorale.onsets, strict=True):
            part = stream.Part()
            starts = [int(s) for s in np.flatnonzero(onsets & (pitches > 0))]
            for start in starts:
                end = start + 1
                while end < len(pitches) and pitches[end] == pitches[start] and not onsets[end]:
                    end += 1
                part.insert(start / 4, note.Note(int(pitches[start]), quarterLength=(end - start) / 4))
            score.insert(0, part)
        theirs = analysis.discrete.KrumhanslSchmuckler().getSolution(score)

        tonic, mode = tags.find_key(tags.pitch_class_histogram(chorale.pitches))

        assert (tonic, mode) == (theirs.tonic.pitchClass, theirs.mode), name
