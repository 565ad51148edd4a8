"""MIDI in and out: odd inputs built here with pretty_midi and mido, read onto the grid and written back."""

from __future__ import annotations

import io
import os

import mido
import numpy as np
import pretty_midi
import pytest

from gan import midi
from gan.metrics import estimate_keys, key_name
from gan.midi import MidiError
from lambdas.common.melodies import SAMPLES, render


def melody_file(
    notes: list[tuple[float, float, int]],
    tempo: float = 120.0,
    resolution: int = 220,
    signatures: list[tuple[int, int, float]] = ((4, 4, 0.0),),
) -> bytes:
    """A one-track MIDI of (start beat, length in beats, pitch) notes."""
    seconds_per_beat = 60.0 / tempo
    song = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=tempo)
    song.time_signature_changes = [
        pretty_midi.TimeSignature(n, d, beat * seconds_per_beat) for n, d, beat in signatures
    ]
    track = pretty_midi.Instrument(program=0, name="melody")
    for start, length, pitch in notes:
        track.notes.append(
            pretty_midi.Note(100, pitch, start * seconds_per_beat, (start + length) * seconds_per_beat)
        )
    song.instruments.append(track)
    buffer = io.BytesIO()
    song.write(buffer)
    return buffer.getvalue()


def read_back(data: bytes) -> pretty_midi.PrettyMIDI:
    return pretty_midi.PrettyMIDI(io.BytesIO(data))


def with_lower_voices(melody: midi.Melody) -> tuple[np.ndarray, np.ndarray]:
    """The melody over three held lower voices (what a model would add)."""
    sounding = melody.pitches > 0
    pitches = np.stack([melody.pitches, *(np.where(sounding, p, 0) for p in (60, 55, 43))]).astype(np.uint8)
    onsets = np.stack([melody.onsets, *(melody.onsets,) * 3])
    return pitches, onsets


def test_three_four_with_a_pickup_reads_bar_aligned_and_writes_back_aligned():
    # Given a 3/4 tune whose one-beat pickup is spelled as a 1/4 bar before the 3/4
    notes = [(0, 1, 67), (1, 1, 72), (2, 1, 72), (3, 1, 74), (4, 3, 76)]
    data = melody_file(notes, signatures=[(1, 4, 0), (3, 4, 1)])

    # When it is read
    melody = midi.read_melody(data)

    # Then the pickup is padded in front to a full 3/4 bar
    assert (melody.steps_per_bar, melody.pickup_steps, melody.time_signature) == (12, 8, (3, 4))
    assert melody.steps == 36 and (melody.pitches[:8] == 0).all()
    assert list(melody.pitches[8:24:4]) == [67, 72, 72, 74] and (melody.pitches[24:36] == 76).all()
    # the repeated C stays two notes
    assert list(np.flatnonzero(melody.onsets)) == [8, 12, 16, 20, 24]

    # And written back, the padding is gone and every note starts where it started
    out = read_back(
        midi.write_chorale(
            *with_lower_voices(melody),
            melody.tempo_bpm,
            melody.steps_per_bar,
            melody.pickup_steps,
            melody.time_signature,
        )
    )
    soprano = out.instruments[0]
    assert [(round(n.start, 6), round(n.end, 6), n.pitch) for n in soprano.notes] == [
        (s * 0.5, (s + d) * 0.5, p) for s, d, p in notes
    ]
    assert [(ts.numerator, ts.denominator, ts.time) for ts in out.time_signature_changes] == [
        (1, 4, 0),
        (3, 4, 0.5),
    ]


def test_ninety_bpm_at_480_ticks_per_beat_written_with_mido():
    # Given a file written by mido directly: 480 ticks per beat, 90 bpm, an eighth and a dotted quarter
    song = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90)))
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4))
    for pitch, ticks in ((60, 240), (62, 720), (64, 960), (65, 1920)):
        track.append(mido.Message("note_on", note=pitch, velocity=90, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=ticks))
    song.tracks.append(track)
    buffer = io.BytesIO()
    song.save(file=buffer)

    melody = midi.read_melody(buffer.getvalue())

    assert melody.tempo_bpm == pytest.approx(90, abs=1e-3)
    assert (melody.steps_per_bar, melody.pickup_steps, melody.steps) == (16, 0, 32)
    assert list(melody.pitches[:16]) == [60] * 2 + [62] * 6 + [64] * 8
    assert list(np.flatnonzero(melody.onsets)) == [0, 2, 8, 16]
    out = read_back(midi.write_chorale(*with_lower_voices(melody), melody.tempo_bpm, melody.steps_per_bar))
    assert out.get_tempo_changes()[1][0] == pytest.approx(90, abs=1e-3)
    beat = 60 / 90
    # (MIDI stores 90 bpm as 666,667 µs per beat, hence approx)
    assert [n.start / beat for n in out.instruments[0].notes] == pytest.approx([0, 0.5, 2, 4], abs=1e-5)


def test_a_melody_track_with_chords_keeps_its_top_line():
    # C major and F major triads, then a single G, all on the melody track
    notes = [(0, 2, 60), (0, 2, 64), (0, 2, 67), (2, 2, 65), (2, 2, 69), (2, 2, 72), (4, 4, 67)]
    melody = midi.read_melody(melody_file(notes))
    assert list(melody.pitches[::8]) == [67, 72, 67, 67]
    assert list(np.flatnonzero(melody.onsets)) == [0, 8, 16]


def test_a_forty_bar_melody_is_read_and_written_whole():
    rng = np.random.default_rng(3)
    pitches = rng.integers(60, 80, size=160)
    notes = [(beat, 1, int(p)) for beat, p in enumerate(pitches)]  # 40 bars of quarters
    melody = midi.read_melody(melody_file(notes, tempo=100))
    assert melody.steps == 640 and list(melody.pitches[::4]) == list(pitches)
    out = read_back(midi.write_chorale(*with_lower_voices(melody), melody.tempo_bpm, melody.steps_per_bar))
    assert len(out.instruments) == 4
    assert [n.pitch for n in out.instruments[0].notes] == list(pitches)
    assert out.get_end_time() == pytest.approx(160 * 0.6)


def test_a_melody_in_f_sharp_minor_keeps_its_pitches():
    # F# G# A B C# D E# F#: the harmonic minor scale up and the tonic again, tonic weighted
    scale = [66, 68, 69, 71, 73, 74, 77, 78]
    notes = [(2 * i, 2, p) for i, p in enumerate(scale)] + [(16, 4, 66), (20, 4, 73), (24, 8, 66)]
    melody = midi.read_melody(melody_file(notes))
    assert [int(p) for p in melody.pitches[np.flatnonzero(melody.onsets)]] == [*scale, 66, 73, 66]
    assert key_name(int(estimate_keys(melody.pitches[None])[0])) == "F# minor"


def test_repeated_notes_stay_distinct_notes_in_the_output():
    notes = [(0, 1, 64), (1, 1, 64), (2, 0.5, 64), (2.5, 0.5, 64), (3, 1, 62)]
    melody = midi.read_melody(melody_file(notes))
    assert list(np.flatnonzero(melody.onsets)) == [0, 4, 8, 10, 12]
    out = read_back(midi.write_chorale(*with_lower_voices(melody), melody.tempo_bpm, melody.steps_per_bar))
    assert [(n.start, n.pitch) for n in out.instruments[0].notes] == [
        (0, 64),
        (0.5, 64),
        (1, 64),
        (1.25, 64),
        (1.5, 62),
    ]
    # the held lower voices re-strike with every melody note
    assert len(out.instruments[1].notes) == 5


def test_output_has_four_named_choir_tracks_at_the_given_tempo():
    pitches = np.array([[72] * 16, [67] * 16, [64] * 16, [48] * 16], dtype=np.uint8)
    onsets = np.zeros_like(pitches, dtype=bool)
    onsets[:, 0] = True
    song = midi.chorale_midi(pitches, onsets, tempo_bpm=75, steps_per_bar=16)
    out = read_back(midi.write_chorale(pitches, onsets, tempo_bpm=75, steps_per_bar=16))
    for written in (song, out):
        assert [i.name for i in written.instruments] == ["Soprano", "Alto", "Tenor", "Bass"]
        assert all(int(i.program) == midi.VOICE_PROGRAM and not i.is_drum for i in written.instruments)
        assert [[n.pitch for n in i.notes] for i in written.instruments] == [[72], [67], [64], [48]]
    assert out.get_tempo_changes()[1][0] == pytest.approx(75)
    assert out.instruments[0].notes[0].end == pytest.approx(4 * 60 / 75)


def test_several_tracks_read_onto_one_grid():
    song = pretty_midi.PrettyMIDI(resolution=96, initial_tempo=120)
    for pitch in (72, 67, 64, 48):
        track = pretty_midi.Instrument(program=52)
        track.notes.append(pretty_midi.Note(80, pitch, 0.5, 2.0))  # beat 2 to the end of the bar
        song.instruments.append(track)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes.append(pretty_midi.Note(80, 36, 0, 0.5))
    song.instruments.insert(0, drums)
    buffer = io.BytesIO()
    song.write(buffer)
    lines = midi.read_tracks(buffer.getvalue(), count=4)
    assert lines.pitches.shape == (4, 16)
    assert list(lines.pitches[:, 4]) == [72, 67, 64, 48] and not lines.pitches[:, :4].any()


def test_a_midi_file_without_notes_is_a_clear_error():
    empty = pretty_midi.PrettyMIDI()
    empty.instruments.append(pretty_midi.Instrument(program=0))
    buffer = io.BytesIO()
    empty.write(buffer)
    with pytest.raises(MidiError, match="has no notes"):
        midi.read_melody(buffer.getvalue())


def test_drums_only_is_a_file_without_notes():
    song = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes.append(pretty_midi.Note(100, 38, 0, 0.5))
    song.instruments.append(drums)
    buffer = io.BytesIO()
    song.write(buffer)
    with pytest.raises(MidiError, match="drum tracks are ignored"):
        midi.read_melody(buffer.getvalue())


@pytest.mark.parametrize("data", [os.urandom(512), b"", b"MThd" + os.urandom(64), b"%PDF-1.7 not music"])
def test_random_bytes_are_not_midi(data):
    with pytest.raises(MidiError, match="not a readable MIDI file") as error:
        midi.read_melody(data)
    assert isinstance(error.value, ValueError)


def test_reads_from_a_path(tmp_path):
    path = tmp_path / "tune.mid"
    path.write_bytes(melody_file([(0, 4, 60)]))
    assert midi.read_melody(path).pitches[0] == 60


# Each sample's first bar line, from its source: (notes of the upbeat before it, pitch sung on it).
FIRST_DOWNBEAT = {
    "twinkle-twinkle": (0, 60),  # "Twin-": C4
    "ode-to-joy": (0, 64),  # E4
    "stille-nacht": (0, 55),  # "Stil-": G3
    "yankee-doodle": (0, 74),  # "Yan-": D5
    "londonderry-air": (3, 71),  # "Oh Dan-ny | boy": F#4 G4 A4 | B4
    "ein-feste-burg": (1, 72),  # "Ein | fe-": C5 | C5
}


def test_the_first_downbeat_table_covers_every_sample():
    assert set(FIRST_DOWNBEAT) == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_shipped_sample_melody_reads_whole_at_its_meter_and_tempo(name):
    sample = SAMPLES[name]
    melody = midi.read_melody(render(sample))
    numerator, denominator = sample.time_signature
    assert melody.steps_per_bar == numerator * 16 // denominator
    assert melody.time_signature == sample.time_signature and melody.tempo_bpm == sample.bpm
    assert melody.steps == -(-(melody.pickup_steps + sample.sixteenths) // melody.steps_per_bar) * (
        melody.steps_per_bar
    )
    assert int(melody.onsets.sum()) == sum(1 for pitch, _ in sample.notes if pitch is not None)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_shipped_sample_melody_has_its_first_downbeat_on_a_bar_line(name):
    sample = SAMPLES[name]
    melody = midi.read_melody(render(sample))
    upbeat_notes, downbeat_pitch = FIRST_DOWNBEAT[name]

    first_note = int(np.argmax(melody.onsets))
    bar_line = -(-first_note // melody.steps_per_bar) * melody.steps_per_bar
    assert int(melody.onsets[:bar_line].sum()) == upbeat_notes
    assert melody.onsets[bar_line] and melody.pitches[bar_line] == downbeat_pitch
    # The upbeat and the short last bar make one whole bar, so no bar in between is short and
    # every later bar line falls where the tune's does.
    assert sample.sixteenths % melody.steps_per_bar == 0
