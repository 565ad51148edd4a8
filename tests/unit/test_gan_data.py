"""The chorale dataset: scores built here with music21 and pretty_midi, answers worked out by hand."""

from __future__ import annotations

import json
import os

import numpy as np
import pretty_midi
import pytest
from music21 import meter, note, stream, tie

from gan import data
from gan.data import Chorale, UnusableScore

# --- building scores -------------------------------------------------------------------------


def make_part(name: str, bars: list[list[tuple]], signature: str = "4/4") -> stream.Part:
    """bars: lists of (midi pitch or None for a rest, quarter length[, tie type])."""
    part = stream.Part(id=name)
    part.partName = name
    for number, bar in enumerate(bars):
        measure = stream.Measure(number=number)
        if number == 0:
            measure.timeSignature = meter.TimeSignature(signature)
        for pitch, length, *tie_type in bar:
            element = (
                note.Rest(quarterLength=length) if pitch is None else note.Note(pitch, quarterLength=length)
            )
            if tie_type:
                element.tie = tie.Tie(tie_type[0])
            measure.append(element)
        part.append(measure)
    return part


def make_score(parts: list[stream.Part]) -> stream.Score:
    score = stream.Score()
    for part in parts:
        score.insert(0, part)
    return score


def held(pitch: int, bars: list[float]) -> list[list[tuple]]:
    """One voice holding `pitch`, a note per bar of the given lengths."""
    return [[(pitch, length)] for length in bars]


# --- conversion ------------------------------------------------------------------------------


def test_pickup_is_padded_in_front_and_repeated_and_tied_notes_are_told_apart():
    # Given a 3/4 chorale with a one-beat pickup, a repeated C, and an E tied over the bar line
    soprano = make_part(
        "Soprano",
        [[(67, 1)], [(72, 1), (72, 1), (74, 1)], [(76, 2), (76, 1, "start")], [(76, 1, "stop"), (None, 2)]],
        "3/4",
    )
    lower = [
        make_part(name, held(p, [1, 3, 3, 3]), "3/4")
        for name, p in (("Alto", 64), ("Tenor", 60), ("Bass", 48))
    ]

    # When it is converted
    chorale = data.chorale_from_score("pickup", make_score([soprano, *lower]))

    # Then bars are 12 steps, the pickup sits at the end of a padded first bar
    assert chorale.steps_per_bar == 12
    assert chorale.pitches.shape == (4, 48)
    assert chorale.pitches.dtype == np.uint8 and chorale.onsets.dtype == bool
    s, s_on = chorale.pitches[0], chorale.onsets[0]
    assert (s[:8] == 0).all() and (s[8:12] == 67).all()
    # the repeated C is two notes; the tied E is one note across the bar line
    assert list(s[12:24]) == [72] * 8 + [74] * 4
    assert list(np.flatnonzero(s_on[12:24]) + 12) == [12, 16, 20]
    assert list(s[24:40]) == [76] * 16 and list(np.flatnonzero(s_on[24:48])) == [0, 8]
    assert (s[40:] == 0).all()
    # the lower voices start with the pickup too
    assert list(chorale.pitches[:, 8]) == [67, 64, 60, 48]
    assert chorale.onsets[1:, 8].all() and chorale.onsets[1:, 12].all()


def test_thirty_second_notes_are_sampled_onto_the_grid():
    # A 16th C, then two 32nds D and E in the next 16th: the step takes the note sounding at its
    # start (D); E, which covers no grid point, vanishes.
    soprano = make_part("Soprano", [[(60, 0.25), (62, 0.125), (64, 0.125), (65, 0.5), (67, 3)]])
    lower = [make_part(name, held(p, [4]), "4/4") for name, p in (("Alto", 55), ("Tenor", 52), ("Bass", 48))]
    chorale = data.chorale_from_score("32nds", make_score([soprano, *lower]))
    assert list(chorale.pitches[0, :4]) == [60, 62, 65, 65]
    assert list(chorale.onsets[0, :4]) == [True, True, True, False]


def test_voices_are_picked_by_name_among_instrument_parts():
    voices = [
        make_part(n, held(p, [4, 4])) for n, p in (("Soprano", 72), ("Alto", 67), ("Tenor", 64), ("Bass", 48))
    ]
    horn = make_part("Horn 1", held(84, [4, 4]))
    continuo = make_part("Continuo", held(36, [4, 4]))
    chorale = data.chorale_from_score("parts", make_score([horn, *voices, continuo]))
    assert list(chorale.pitches[:, 0]) == [72, 67, 64, 48]


def test_bass_continuo_part_counts_as_the_bass():
    voices = [
        make_part(n, held(p, [4]))
        for n, p in (("Soprano", 72), ("Alto", 67), ("Tenor", 64), ("Bass Continuo", 48))
    ]
    chorale = data.chorale_from_score("parts", make_score([make_part("Timpani", held(40, [4])), *voices]))
    assert list(chorale.pitches[:, 0]) == [72, 67, 64, 48]


def test_five_vocal_parts_and_changing_meter_are_rejected_with_a_reason():
    five = [make_part(n, held(70, [4])) for n in ("Soprano 1", "Soprano 2", "Alto", "Tenor", "Bass")]
    with pytest.raises(UnusableScore, match="2 soprano"):
        data.chorale_from_score("five", make_score(five))
    changing = [make_part(n, held(60, [4])) for n in ("Soprano", "Alto", "Tenor", "Bass")]
    changing[0].getElementsByClass(stream.Measure)[0].append(note.Note(60, quarterLength=1))
    extra = stream.Measure(number=1)
    extra.timeSignature = meter.TimeSignature("3/4")
    extra.append(note.Note(62, quarterLength=3))
    changing[0].append(extra)
    with pytest.raises(UnusableScore, match="changes time signature"):
        data.chorale_from_score("meter", make_score(changing))


def test_bar_lines_are_restored_after_a_section_that_does_not_fill_its_bar():
    # 4/4: pickup of 1 beat, a full bar, a closing bar of 2 beats (a section's end), then full
    # bars: the full bars after it must still start on bar lines.
    shifts = data.bar_line_shifts([0, 4, 20, 28, 44], [4, 16, 8, 16, 16], 16)
    assert shifts == [12, 12, 12, 20, 20]
    starts = [s + d for s, d in zip([0, 4, 20, 28, 44], shifts, strict=True)]
    assert starts == [12, 16, 32, 48, 64]
    # a mid-piece pickup after a closing bar ends on a bar line; nothing is inserted
    assert data.bar_line_shifts([0, 16, 28, 32], [16, 12, 4, 16], 16) == [0, 0, 0, 0]


def test_a_tie_out_of_a_short_bar_holds_across_the_rest_that_realigns_the_bar_lines():
    # A 3-beat bar whose last note is tied into a full bar (bwv374 does this): the full bar moves
    # to the next bar line, and the tied D keeps sounding, one note, through the gap.
    bars = [[(72, 4)], [(74, 3, "start")], [(74, 1, "stop"), (None, 3)]]
    parts = [make_part(n, bars) for n in ("Soprano", "Alto", "Tenor", "Bass")]
    chorale = data.chorale_from_score("tied", make_score(parts))
    assert chorale.steps == 48
    assert list(chorale.pitches[0, 16:36]) == [74] * 20 and (chorale.pitches[0, 36:] == 0).all()
    assert list(np.flatnonzero(chorale.onsets[0])) == [0, 16]


# --- splits ----------------------------------------------------------------------------------


def piece(name: str, melody: list[int], lower: int = 48) -> Chorale:
    steps = -(-len(melody) // 16) * 16
    pitches = np.zeros((4, steps), dtype=np.uint8)
    pitches[0, : len(melody)] = melody
    pitches[1:, : len(melody)] = lower
    onsets = np.zeros((4, steps), dtype=bool)
    onsets[:, 0] = True
    onsets[0, : len(melody)] = True
    return Chorale(name, pitches, onsets & (pitches > 0), 16)


def test_splits_share_no_melody_even_transposed_and_drop_exact_duplicates():
    rng = np.random.default_rng(1)
    pieces = [piece(f"p{i}", list(rng.integers(60, 80, size=32))) for i in range(300)]
    # the same tune again: harmonised differently, and transposed up a tone
    copies = [piece(p.name + "-reharmonised", list(p.pitches[0]), lower=43) for p in pieces[:20]]
    transposed = [piece(p.name + "-up", list(p.pitches[0] + 2)) for p in pieces[20:40]]
    duplicates = [piece(p.name + "-dup", list(p.pitches[0])) for p in pieces[40:45]]
    splits = data.split_by_melody(pieces + copies + transposed + duplicates)

    names = {split: {c.name for c in getattr(splits, split)} for split in ("train", "validation", "test")}
    assert sum(len(n) for n in names.values()) == 340  # the 5 exact duplicates are gone
    assert not any(n.endswith("-dup") for group in names.values() for n in group)
    keys = {split: {data.melody_key(c) for c in getattr(splits, split)} for split in names}
    assert not keys["train"] & keys["validation"]
    assert not keys["train"] & keys["test"]
    assert not keys["validation"] & keys["test"]
    for p in pieces[:40]:
        family = [s for s, group in names.items() if p.name in group or p.name + "-up" in group]
        assert len(set(family)) == 1
    # about 80/10/10, and the same answer every time
    assert 0.7 < len(splits.train) / 340 < 0.9
    assert 0.05 < len(splits.validation) / 340 < 0.15 and 0.05 < len(splits.test) / 340 < 0.15
    again = data.split_by_melody(pieces + copies + transposed + duplicates)
    assert [c.name for c in again.test] == [c.name for c in splits.test]


# --- cache -----------------------------------------------------------------------------------


def test_cache_is_built_once_then_read(tmp_path, monkeypatch):
    paths = data.corpus_paths()[:4]
    monkeypatch.setattr(data, "corpus_paths", lambda: paths)
    monkeypatch.setattr(data, "BUILD_WORKERS", 1)
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path))

    first = data.load_chorales()
    cache = data.cache_path()
    assert cache.parent == tmp_path and f"v{data.FORMAT_VERSION}" in cache.name

    def no_rebuild(*_args, **_kwargs):
        raise AssertionError("the cache should have been read")

    monkeypatch.setattr(data, "convert_file", no_rebuild)
    second = data.load_chorales(tmp_path)
    for a, b in zip(
        first.train + first.validation + first.test,
        second.train + second.validation + second.test,
        strict=True,
    ):
        assert a.name == b.name and a.steps_per_bar == b.steps_per_bar
        assert np.array_equal(a.pitches, b.pitches) and np.array_equal(a.onsets, b.onsets)


def test_build_skips_the_keyboard_prelude_and_analyses():
    names = {p.name for p in data.corpus_paths()}
    assert not any(n.endswith(".rntxt") for n in names)
    prelude = next(p for p in data.corpus_paths() if p.name.startswith("bwv846"))
    assert "cannot pick one part per voice" in data.convert_file(prelude)


@pytest.mark.slow
def test_whole_corpus_builds_with_every_chorale_bar_aligned(tmp_path_factory):
    # The session's temporary folder, so the other slow test of the corpus reuses this build.
    splits = data.load_chorales(tmp_path_factory.getbasetemp() / "bach-chorales")
    chorales = splits.train + splits.validation + splits.test
    assert len(chorales) >= 400
    assert {c.steps_per_bar for c in chorales} >= {12, 16}
    for c in chorales:
        assert c.pitches.shape[1] % c.steps_per_bar == 0 and c.pitches.shape == c.onsets.shape
        assert not (c.onsets & (c.pitches == 0)).any()
        assert c.pitches[0].any()
    # 13.6 % of Bach's notes repeat the previous pitch: the onset channel keeps them
    repeats = notes = 0
    for c in chorales:
        steps = np.flatnonzero(c.onsets[0])
        repeats += np.sum(c.pitches[0, steps[1:]] == c.pitches[0, steps[1:] - 1])
        notes += steps.size
    assert 0.05 < repeats / notes < 0.25
    keys = [{data.melody_key(c) for c in getattr(splits, s)} for s in ("train", "validation", "test")]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])


# --- a folder of the user's MIDI files -------------------------------------------------------


def four_track_midi(path, tracks: int = 4, pitches=(72, 67, 64, 48)) -> None:
    midi = pretty_midi.PrettyMIDI(resolution=96, initial_tempo=90)
    for voice in range(tracks):
        instrument = pretty_midi.Instrument(program=52, name=f"v{voice}")
        for beat in range(8):  # two bars of quarters at 90 bpm
            start = beat * 60 / 90
            instrument.notes.append(pretty_midi.Note(80, pitches[voice] + beat % 2, start, start + 60 / 90))
        midi.instruments.append(instrument)
    midi.write(str(path))


def test_midi_folder_keeps_usable_files_and_names_the_reason_for_each_rejected_one(tmp_path):
    four_track_midi(tmp_path / "good.mid")
    four_track_midi(tmp_path / "two-tracks.mid", tracks=2)
    (tmp_path / "noise.mid").write_bytes(os.urandom(200))
    (tmp_path / "notes.txt").write_text("not music")

    usable, rejected = data.load_midi_folder(tmp_path)

    assert [c.name for c in usable] == ["good.mid"]
    good = usable[0]
    assert good.steps_per_bar == 16 and good.pitches.shape == (4, 32)
    assert list(good.pitches[:, 0]) == [72, 67, 64, 48] and list(good.pitches[:, 4]) == [73, 68, 65, 49]
    assert good.onsets[:, ::4].all() and not good.onsets[:, 1::4].any()
    reasons = dict(rejected)
    assert set(reasons) == {"two-tracks.mid", "noise.mid", "notes.txt"}
    assert "2 note track(s) but 4 are needed" in reasons["two-tracks.mid"]
    assert "not a readable MIDI file" in reasons["noise.mid"]
    assert "not a MIDI file" in reasons["notes.txt"]


def test_missing_midi_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_midi_folder(tmp_path / "absent")


def test_the_committed_bach_index_is_what_the_builder_makes_of_the_cached_chorales(tmp_path):
    from contracts.datasets import BACH_INDEX_FILE

    data.load_chorales()  # the cache, built on first use
    written = tmp_path / "index.json"

    assert data.main(["--index", str(written)]) == 0

    # Then `python -m gan.data --index` regenerates the committed file byte for byte
    assert written.read_text() == BACH_INDEX_FILE.read_text()
    index = json.loads(written.read_text())
    assert len(index) == len(data.read_chorales(data.cache_path()))
    assert all({"name", "tags", "bars", "windows"} == set(entry) for entry in index)
    assert all(any(t.startswith("mode:") for t in e["tags"]) and e["windows"] > 0 for e in index)
