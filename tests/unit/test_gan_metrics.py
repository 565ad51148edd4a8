"""Music metrics on hand-made four-voice rolls whose answers are worked out by hand in each test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gan import data, metrics
from gan.data import Chorale

C_MAJOR_TUNE = [72, 74, 76, 77, 79, 77, 76, 72]  # C D E F G F E C, a quarter each: two bars


def quarters(*voices: list[int | None], steps_per_bar: int = 16) -> Chorale:
    """Four voices, one entry per quarter note (None = rest); every entry is a new note."""
    length = max(len(v) for v in voices)
    pitches = np.zeros((4, length * 4), dtype=np.uint8)
    onsets = np.zeros((4, length * 4), dtype=bool)
    for v, line in enumerate(voices):
        for beat, pitch in enumerate(line):
            if pitch:
                pitches[v, beat * 4 : beat * 4 + 4] = pitch
                onsets[v, beat * 4] = True
    return Chorale("hand-made", pitches, onsets, steps_per_bar)


def test_a_bar_with_one_silent_lower_voice():
    # Two bars; the alto rests through the second: alto 1 of 2 bars empty, tenor and bass none.
    piece = quarters(C_MAJOR_TUNE, [67, 67, 67, 67, None, None, None, None], [64] * 8, [48] * 8)
    assert list(metrics.empty_bar_rate(piece.pitches, piece.onsets, 16)) == [0.5, 0.0, 0.0]
    values = metrics.evaluate([piece])
    assert values["alto_empty_bar_rate"] == 0.5 and values["bass_empty_bar_rate"] == 0.0
    assert values["empty_bar_rate"] == pytest.approx(1 / 6)


def test_a_bar_where_the_melody_rests_is_not_an_empty_bar():
    piece = quarters([72, 72, 72, 72, None, None, None, None], [67] * 4, [64] * 4, [48] * 4)
    assert list(metrics.empty_bar_rate([piece])) == [0.0, 0.0, 0.0]


def test_pitch_classes_per_bar():
    # Alto: C D E C in bar 1 (3 classes), G G G G in bar 2 (1): 2 on average.
    # Tenor: C4 and C3 in bar 1 are one pitch class; silent in bar 2, which does not count.
    piece = quarters(C_MAJOR_TUNE, [60, 62, 64, 60, 67, 67, 67, 67], [60, 48, 60, 48], [48] * 8)
    assert list(metrics.pitch_classes_per_bar(piece.pitches, piece.onsets, 16)) == [2.0, 1.0, 1.0]


def test_c_major_triad_under_c_is_all_consonant_but_a_fourth_above_the_bass_is_not():
    # C5 / G4 / E4 / C3: 4th (between upper voices: fine), m6, 2 octaves, m3, 12th, 10th.
    root = quarters([72], [67], [64], [48])
    assert metrics.consonance(root.pitches, root.onsets, 16) == 1.0
    # E5 / C5 / G4 / G3 (a 6/4 chord): the alto is 17 semitones, a compound 4th, above the bass:
    # the one dissonant pair of six.
    six_four = quarters([76], [72], [67], [55])
    assert metrics.consonance(six_four.pitches, six_four.onsets, 16) == pytest.approx(5 / 6)
    # C5 / B4 / F4 / C3: S-A a 2nd, A-T a tritone, A-B a 7th, T-B a 4th over the bass are
    # dissonant; S-T (5th) and S-B (octaves) are not: 2 of 6.
    cluster = quarters([72], [71], [65], [48])
    assert metrics.consonance(cluster.pitches, cluster.onsets, 16) == pytest.approx(2 / 6)


def test_consonance_counts_only_beats_and_sounding_pairs():
    # Beat 1: the triad; the 16th after it a clash that is off the beat; beat 2: the bass rests, so
    # only three pairs count, all consonant.
    piece = quarters([72, 72], [67, 67], [64, 64], [48, None])
    piece.pitches[1, 1] = 73  # off the beat: ignored
    assert metrics.consonance([piece]) == 1.0


def test_voice_crossing_is_the_share_of_beats_with_a_crossed_pair():
    # Beat 2 of four: the alto (74) above the soprano (72); beat 4: the tenor below the bass.
    piece = quarters([72, 72, 72, 72], [67, 74, 67, 67], [64, 64, 64, 45], [48, 48, 48, 48])
    assert metrics.voice_crossing(piece.pitches, piece.onsets, 16) == pytest.approx(2 / 4)


def test_parallel_fifth_is_one_of_six_pair_moves():
    # S holds C5 (re-struck); A E4→F4; T G3→A3; B C3→D3. Every pair moves (one voice or both);
    # only tenor-bass goes from a 5th to a 5th in the same direction.
    piece = quarters([72, 72], [64, 65], [55, 57], [48, 50])
    assert metrics.parallel_fifths_octaves(piece.pitches, piece.onsets, 16) == pytest.approx(1 / 6)


def test_parallel_octaves_count_and_contrary_or_static_ones_do_not():
    # A and B in octaves moving up together: parallel. S and T keep their pitch: no move at all.
    up = quarters([76, 76], [60, 62], [67, 67], [48, 50])
    # pairs that move: S-A, S-B, A-T, A-B, T-B (S-T holds): 5 moves, 1 parallel (A-B)
    assert metrics.parallel_fifths_octaves([up]) == pytest.approx(1 / 5)
    # octaves by contrary motion (A up a 4th, B down a 5th, C→F both) are not parallel
    contrary = quarters([76, 76], [60, 65], [67, 67], [48, 41])
    assert metrics.parallel_fifths_octaves([contrary]) == 0.0


def test_in_key_ratio_uses_the_melody_key_and_the_melodic_minor_extra_notes():
    # C major tune; alto notes C, F#, G, A: 3 of 4 in C major.
    major = quarters(C_MAJOR_TUNE, [60, 66, 67, 69], [64] * 4, [48] * 4)
    assert metrics.key_name(int(metrics.estimate_keys(major.pitches[0])[0])) == "C major"
    assert metrics.in_key_ratio([major])[0] == pytest.approx(3 / 4)
    # A minor tune (A B C D E F G# A, tonic weighted); alto F#, G#, C, C#: A minor with raised 6th
    # and 7th holds F# and G#, not C#: 3 of 4.
    tune = [69, 71, 72, 74, 76, 77, 80, 81, 69, 69, 76, 69]
    minor = quarters(tune, [66, 68, 72, 73], [64] * 4, [45] * 4)
    assert metrics.key_name(int(metrics.estimate_keys(minor.pitches[0])[0])) == "A minor"
    assert metrics.in_key_ratio([minor])[0] == pytest.approx(3 / 4)


def test_polyphony_on_a_piano_roll_holds_chords():
    roll = np.zeros((8, 128), dtype=bool)
    roll[0:2, [60, 64, 67]] = True  # two steps of a triad
    roll[2:4, 72] = True  # two steps of one note; four silent steps do not count
    assert metrics.polyphony(roll) == 2.0
    assert metrics.single_note_rate(roll) == 0.5
    lines = np.array([[72, 72, 0], [67, 0, 0]], dtype=np.uint8)
    roll = metrics.to_pianoroll(lines)
    assert roll.shape == (3, 128) and roll[0, [67, 72]].all() and roll.sum() == 3
    assert metrics.polyphony(roll) == 1.5


def test_lower_voices_of_lines_sound_one_note_at_a_time():
    values = metrics.evaluate([quarters(C_MAJOR_TUNE, [67] * 8, [64] * 8, [48] * 8)])
    assert values["polyphony"] == 1.0 and values["single_note_rate"] == 1.0


def test_mean_note_length_of_the_lower_voices():
    # Alto a whole note (16), tenor four quarters (4 each), bass two halves (8 each):
    # 48 steps in 7 notes.
    piece = quarters(C_MAJOR_TUNE[:4], [67] * 4, [64] * 4, [48] * 4)
    piece.onsets[1] = False
    piece.onsets[1, 0] = True
    piece.onsets[3] = False
    piece.onsets[3, [0, 8]] = True
    assert metrics.mean_note_length([piece]) == pytest.approx(48 / 7)


def test_a_batch_array_gives_the_same_numbers_as_a_list_of_pieces():
    a = quarters(C_MAJOR_TUNE, [67, 74, 67, 67, 60, 62, 64, 60], [64] * 8, [48, 50] * 4)
    b = quarters(C_MAJOR_TUNE, [60, 60, 64, 64, 67, 65, 64, 62], [55] * 8, [48] * 8)
    pitches, onsets = np.stack([a.pitches, b.pitches]), np.stack([a.onsets, b.onsets])
    assert metrics.consonance(pitches, onsets, 16) == metrics.consonance([a, b])
    assert np.array_equal(metrics.in_key_ratio(pitches, onsets, 16), metrics.in_key_ratio([a, b]))
    # no parallel move is counted across the end of one piece and the start of the next
    assert metrics.parallel_fifths_octaves([a, b]) == metrics.parallel_fifths_octaves(pitches, onsets, 16)


def test_chord_agreement_counts_beats_with_bachs_pitch_classes():
    bach = quarters(C_MAJOR_TUNE[:4], [67, 67, 69, 67], [64, 65, 65, 64], [48, 47, 53, 48])
    # same on beats 1 and 4; beat 2 a different chord; beat 3 the same classes an octave lower
    ours = quarters(C_MAJOR_TUNE[:4], [67, 67, 57, 67], [64, 62, 65, 64], [48, 43, 41, 48])
    assert metrics.chord_agreement([bach], [bach]) == 1.0
    assert metrics.chord_agreement([ours], [bach]) == pytest.approx(3 / 4)


def test_tonic_triad_baseline_holds_the_triad_below_the_melody():
    piece = quarters(C_MAJOR_TUNE, [67] * 8, [64] * 8, [48] * 8)
    triad = metrics.tonic_triad(piece)
    # lowest melody note C5: alto C5 (a unison is not a crossing), tenor G4, bass C4
    assert list(triad.pitches[:, 0]) == [72, 72, 67, 60]
    assert np.array_equal(triad.pitches[0], piece.pitches[0])
    assert list(np.flatnonzero(triad.onsets[1])) == [0, 16]
    assert metrics.voice_crossing([triad]) == 0.0


# --- the similarity index against real chorales -----------------------------------------------


@pytest.fixture(scope="module")
def bach() -> list[Chorale]:
    chorales, _ = data.build_corpus(data.corpus_paths()[::25], workers=1)  # 17 chorales
    return chorales


def random_notes(piece: Chorale, rng: np.random.Generator) -> Chorale:
    """The melody kept; each lower voice a random in-range note per beat."""
    pitches, onsets = piece.pitches.copy(), piece.onsets.copy()
    steps = pitches.shape[1]
    for voice, (low, high) in zip((1, 2, 3), ((53, 74), (48, 69), (36, 64)), strict=True):
        pitches[voice] = np.repeat(rng.integers(low, high + 1, size=-(-steps // 4)), 4)[:steps]
        onsets[voice] = np.arange(steps) % 4 == 0
    return Chorale(piece.name, pitches, onsets, piece.steps_per_bar)


def test_similarity_is_one_for_bach_low_for_random_notes_and_between_for_the_tonic_triad(bach):
    assert metrics.evaluate(bach, reference=bach)["similarity"] == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noise = metrics.evaluate([random_notes(c, rng) for c in bach], reference=bach)
    triad = metrics.evaluate([metrics.tonic_triad(c) for c in bach], reference=bach)
    assert noise["similarity"] < 0.5
    assert noise["similarity"] < triad["similarity"] < 0.75
    # the baselines' harmony, as the project notes give them: random ~54 %, triad ~86 % consonant
    assert 0.45 < noise["consonance"] < 0.65 and 0.8 < triad["consonance"] < 0.92
    assert noise["chord_agreement"] < 0.05 < triad["chord_agreement"] < 0.5
    for key, value in noise.items():
        assert isinstance(key, str) and key == key.lower() and math.isfinite(value)


def test_bach_values_land_near_the_published_ones(bach):
    values = metrics.evaluate(bach)
    assert values["single_note_rate"] == 1.0
    assert values["empty_bar_rate"] < 0.01
    assert 0.9 < values["in_key_ratio"] < 0.97
    assert 0.88 < values["consonance"] < 0.95
    assert values["voice_crossing"] < 0.05
    assert values["parallel_fifths_octaves"] < 0.02
    assert 2.8 < values["pitch_classes_per_bar"] < 3.8
    assert 3.0 < values["mean_note_length"] < 4.0


@pytest.mark.slow
def test_similarity_scales_are_the_spread_across_all_chorales(tmp_path_factory):
    # Shared with tests/unit/test_gan_data.py's build of the whole corpus in the same session.
    splits = data.load_chorales(tmp_path_factory.getbasetemp() / "bach-chorales")
    spread = metrics.bach_spread(splits.train + splits.validation + splits.test)
    for metric, scale in metrics.SIMILARITY_SCALES.items():
        assert scale == pytest.approx(spread[metric], rel=0.05, abs=0.002), metric


def test_a_silent_accompaniment_has_no_values_instead_of_made_up_ones(recwarn):
    bach = quarters(C_MAJOR_TUNE, [67] * 8, [64] * 8, [48] * 8)
    silent = quarters(C_MAJOR_TUNE, [], [], [])
    values = metrics.evaluate([silent], reference=[bach])
    assert values["empty_bar_rate"] == 1.0
    assert math.isnan(values["in_key_ratio"]) and math.isnan(values["consonance"])
    assert values["similarity"] < 0.01
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
