"""Composing with a model: the user's melody comes back exactly (off-grid notes, tempo map, time
signatures, pickup), the three voices lie on the grid under it, the chosen instruments reach the
file, and the same inputs give the same bytes. The generator is small and untrained: these are
properties of the writing, not of the music."""

from __future__ import annotations

import io
import json
from collections import defaultdict

import mido
import numpy as np
import pretty_midi
import pytest
import torch

from contracts.instruments import PRESETS, Voice, resolve
from gan import data as gan_data
from gan import generate, midi
from gan.generate import accompany, harmonise
from gan.grid import note_spans
from gan.model import Generator, ModelConfig
from gan.reporter import Reporter
from gan.train import Hyperparameters, Paths, harmonise_chorale_melody, train

TPB = 384  # ticks per beat: neither 480 (what gan.midi writes) nor 220 (pretty_midi's default)
SIXTEENTH = TPB // 4
SMALL = ModelConfig(generator_channels=(16, 16, 16), noise_channels=4, critic_channels=(8, 8, 8, 8))

# The conductor: a 1/4 pickup bar, 4/4, one bar of 3/4, 4/4 again; four tempi, one mid-bar.
BAR_1, BAR_2, BAR_3, BAR_4, BAR_5 = TPB, 5 * TPB, 9 * TPB, 12 * TPB, 16 * TPB
CONDUCTOR = [
    (0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100))),
    (0, mido.MetaMessage("time_signature", numerator=1, denominator=4)),
    (0, mido.MetaMessage("key_signature", key="G")),
    (BAR_1, mido.MetaMessage("time_signature", numerator=4, denominator=4)),
    (BAR_2, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(72))),
    (BAR_3, mido.MetaMessage("time_signature", numerator=3, denominator=4)),
    (BAR_3 + TPB, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(132))),
    (BAR_4, mido.MetaMessage("time_signature", numerator=4, denominator=4)),
    (BAR_5, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60))),
]
# (start tick, end tick, pitch, velocity)
MELODY = [
    (0, TPB, 67, 80),  # the pickup
    # bar 1: triplet eighths, a quarter, a grace note before its main note, two 32nds
    (BAR_1, BAR_1 + 128, 72, 90),
    (BAR_1 + 128, BAR_1 + 256, 71, 70),
    (BAR_1 + 256, BAR_1 + 384, 69, 100),
    (BAR_1 + 384, BAR_1 + 756, 71, 85),
    (BAR_1 + 756, BAR_1 + 768, 74, 60),  # grace note: 12 ticks before the beat, no grid point
    (BAR_1 + 768, BAR_1 + 1152, 72, 88),
    (BAR_1 + 1152, BAR_1 + 1200, 71, 77),  # 32nd on the grid
    (BAR_1 + 1200, BAR_1 + 1248, 72, 79),  # 32nd between grid points
    (BAR_1 + 1248, BAR_2, 74, 90),
    # bar 2 (72 bpm): a half note, quarter-note triplets
    (BAR_2, BAR_2 + 768, 76, 95),
    (BAR_2 + 768, BAR_2 + 1024, 74, 81),
    (BAR_2 + 1024, BAR_2 + 1280, 72, 82),
    (BAR_2 + 1280, BAR_3, 71, 83),
    # bar 3 (3/4, the tempo changes on beat 2): a late start after a short rest
    (BAR_3, BAR_3 + TPB, 72, 90),
    (BAR_3 + TPB + 10, BAR_3 + 2 * TPB, 74, 91),
    (BAR_3 + 2 * TPB, BAR_4, 76, 92),
    # bar 4: a very short note off the grid between two notes
    (BAR_4, BAR_4 + 2 * TPB, 79, 100),
    (BAR_4 + 2 * TPB + 24, BAR_4 + 2 * TPB + 44, 78, 50),
    (BAR_4 + 2 * TPB + 96, BAR_5, 79, 100),
    (BAR_5, BAR_5 + 4 * TPB, 67, 90),  # bar 5 (60 bpm): a whole note
]


def _track(events: list[tuple[int, mido.Message | mido.MetaMessage]]) -> mido.MidiTrack:
    track, now = mido.MidiTrack(), 0
    for tick, message in sorted(events, key=lambda e: e[0]):
        track.append(message.copy(time=tick - now))
        now = tick
    return track


def tricky_melody(single_track: bool = False) -> bytes:
    """MELODY under CONDUCTOR, as a type-1 file (tempo track, then a piano melody track) or as
    a type-0 file (everything on one track)."""
    notes: list[tuple[int, mido.Message | mido.MetaMessage]] = [
        (0, mido.MetaMessage("track_name", name="my tune")),
        (0, mido.Message("program_change", program=0)),
    ]
    for start, end, pitch, velocity in MELODY:
        notes.append((start, mido.Message("note_on", note=pitch, velocity=velocity)))
        notes.append((end, mido.Message("note_off", note=pitch, velocity=0)))
    notes.sort(key=lambda e: (e[0], e[1].type != "note_off"))  # an end before a start at one tick
    conductor: list[tuple[int, mido.Message | mido.MetaMessage]] = list(CONDUCTOR)
    if single_track:
        song = mido.MidiFile(type=0, ticks_per_beat=TPB, tracks=[_track(conductor + notes)])
    else:
        song = mido.MidiFile(type=1, ticks_per_beat=TPB, tracks=[_track(conductor), _track(notes)])
    buffer = io.BytesIO()
    song.save(file=buffer)
    return buffer.getvalue()


def simple_melody() -> bytes:
    pitches = np.repeat(np.array([67, 69, 71, 72, 74, 72, 71, 69], dtype=np.uint8), 8)
    onsets = np.zeros(64, dtype=bool)
    onsets[::8] = True
    return midi.write_chorale(pitches[None], onsets[None], tempo_bpm=90, steps_per_bar=16)


# --- reading what came out, with mido alone ------------------------------------------------------


def notes_of(track: mido.MidiTrack) -> list[tuple[int, int, int, int]]:
    """(start, end, pitch, velocity) in ticks, sorted; a note-off ends the oldest open note."""
    open_notes: dict[int, list[tuple[int, int]]] = defaultdict(list)
    notes, tick = [], 0
    for message in track:
        tick += message.time
        if message.type == "note_on" and message.velocity > 0:
            open_notes[message.note].append((tick, message.velocity))
        elif message.type in ("note_on", "note_off"):
            start, velocity = open_notes[message.note].pop(0)
            notes.append((start, tick, message.note, velocity))
    assert not any(open_notes.values()), "a note is never switched off"
    return sorted(notes)


def conductor_of(song: mido.MidiFile) -> list[tuple[int, str, tuple]]:
    events = []
    for track in song.tracks:
        tick = 0
        for m in track:
            tick += m.time
            if m.type == "set_tempo":
                events.append((tick, m.type, (m.tempo,)))
            elif m.type == "time_signature":
                events.append((tick, m.type, (m.numerator, m.denominator)))
            elif m.type == "key_signature":
                events.append((tick, m.type, (m.key,)))
    return sorted(events)


def voices_of(song: mido.MidiFile) -> list[tuple[str, int]]:
    """(track name, program) of each track with a program change."""
    found = []
    for track in song.tracks:
        names = [m.name for m in track if m.type == "track_name"]
        programs = [m.program for m in track if m.type == "program_change"]
        if programs:
            found.append((names[0], programs[0]))
    return found


def parse(data: bytes) -> mido.MidiFile:
    return mido.MidiFile(file=io.BytesIO(data))


@pytest.fixture(scope="module")
def generator() -> Generator:
    torch.manual_seed(0)
    return Generator(SMALL).eval()


# --- the melody comes back exactly ------------------------------------------------------------


@pytest.mark.parametrize("single_track", [False, True], ids=["type-1", "type-0"])
def test_the_melody_comes_back_tick_for_tick_over_three_voices_on_the_grid(generator, single_track):
    data = tricky_melody(single_track)
    melody = midi.read_melody(data)
    assert (melody.steps_per_bar, melody.pickup_steps) == (16, 12)  # the 1/4 pickup is padded

    out = parse(accompany(generator, data, seed=3, instruments="strings"))

    # The melody track: every note as given, triplets, the grace note and both 32nds included
    assert out.ticks_per_beat == TPB
    melody_track, *lower = [t for t in out.tracks if any(m.type == "note_on" for m in t)]
    assert notes_of(melody_track) == sorted(MELODY)
    # The input's tempo map, time and key signatures, at their ticks
    assert conductor_of(out) == conductor_of(parse(data))
    assert [e for e in conductor_of(out) if e[1] == "set_tempo"] == [
        (tick, "set_tempo", (m.tempo,)) for tick, m in CONDUCTOR if m.type == "set_tempo"
    ]
    # Three voices with the chosen instruments, every note on the 16th grid of the input's ticks
    assert voices_of(out) == [(v.name, v.program) for v in PRESETS["strings"]]
    assert len(lower) == 3
    lower_notes = [notes_of(track) for track in lower]
    assert all(lower_notes), "an untrained model still writes notes"
    assert all(start % SIXTEENTH == 0 and end % SIXTEENTH == 0 for n in lower_notes for start, end, _, _ in n)
    # ... and they are the model's lines, lined up with the input's bar lines (pickup cut)
    pitches, onsets = harmonise(generator, melody.pitches, melody.onsets, melody.steps_per_bar, seed=3)
    cut = melody.pickup_steps
    for notes, line, line_onsets in zip(lower_notes, pitches[1:], onsets[1:], strict=True):
        expected = [
            ((max(int(s), cut) - cut) * SIXTEENTH, (int(e) - cut) * SIXTEENTH, int(p))
            for s, e, p in zip(*note_spans(line, line_onsets), strict=True)
            if e > cut
        ]
        assert [(s, e, p) for s, e, p, _ in notes] == expected


def test_a_daw_reading_the_output_in_seconds_hears_the_melody_as_the_input():
    torch.manual_seed(1)
    data = tricky_melody()
    out = pretty_midi.PrettyMIDI(io.BytesIO(accompany(Generator(SMALL).eval(), data, seed=0)))
    given = pretty_midi.PrettyMIDI(io.BytesIO(data))

    def heard(song: pretty_midi.PrettyMIDI) -> list[tuple[float, float, int, int]]:
        return sorted((n.start, n.end, n.pitch, n.velocity) for n in song.instruments[0].notes)

    assert heard(out) == heard(given)  # the same seconds, to the last bit
    assert len(heard(out)) == len(MELODY)
    for a, b in zip(out.get_tempo_changes(), given.get_tempo_changes(), strict=True):
        assert np.array_equal(a, b)
    assert [(ts.numerator, ts.denominator, ts.time) for ts in out.time_signature_changes] == [
        (ts.numerator, ts.denominator, ts.time) for ts in given.time_signature_changes
    ]


def test_the_model_still_hears_the_melody_on_the_grid():
    melody = midi.read_melody(tricky_melody())
    # Bar 1 (steps 16-31 after the 12 steps of padding): each triplet sounds from the first 16th
    # at or after its start; the grace note (74) and the second 32nd (72) hold no grid point.
    assert list(melody.pitches[16:32]) == [72, 72, 71, 69] + [71] * 4 + [72] * 4 + [71, 74, 74, 74]
    assert list(np.flatnonzero(melody.onsets[16:32])) == [0, 2, 3, 4, 8, 12, 13]


def test_the_melody_keeps_notes_the_grid_cannot_hold_even_where_the_model_hears_none(generator):
    # one long note and, after it, only notes shorter than a 16th between grid points
    notes = [
        (0, 4 * TPB, 72, 90),
        (4 * TPB + 10, 4 * TPB + 40, 74, 64),
        (4 * TPB + 200, 4 * TPB + 230, 76, 30),
    ]
    events = []
    for start, end, pitch, velocity in notes:
        events += [
            (start, mido.Message("note_on", note=pitch, velocity=velocity)),
            (end, mido.Message("note_off", note=pitch)),
        ]
    song = mido.MidiFile(ticks_per_beat=TPB, tracks=[_track(events)])
    buffer = io.BytesIO()
    song.save(file=buffer)

    out = parse(accompany(generator, buffer.getvalue(), seed=0))

    assert notes_of(out.tracks[1]) == notes
    assert conductor_of(out) == []  # none given (120 bpm, 4/4 by MIDI's default), none added


# --- instruments ----------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_each_preset_reaches_the_file(generator, preset):
    out = accompany(generator, simple_melody(), seed=0, instruments=preset)
    expected = [(v.name, v.program) for v in PRESETS[preset]]
    assert voices_of(parse(out)) == expected
    read = pretty_midi.PrettyMIDI(io.BytesIO(out))
    assert [(i.name, int(i.program)) for i in read.instruments] == expected


def test_an_explicit_form_reaches_the_file_and_the_default_is_the_choir(generator):
    chosen = [{"program": 73, "name": "Flute"}, 71, {"program": 70}, {"program": 58, "name": "Tuba"}]
    out = parse(accompany(generator, simple_melody(), seed=0, instruments=chosen))
    assert voices_of(out) == [("Flute", 73), ("Alto", 71), ("Tenor", 70), ("Tuba", 58)]
    # each voice on its own channel, so each program plays
    channels = [{m.channel for m in t if m.type in ("note_on", "program_change")} for t in out.tracks[1:]]
    assert channels == [{0}, {1}, {2}, {3}]
    default = parse(accompany(generator, simple_melody(), seed=0))
    assert voices_of(default) == [(name, midi.VOICE_PROGRAM) for name in midi.VOICE_NAMES]


@pytest.mark.parametrize(
    ("instruments", "field"),
    [
        ("banjo", "instruments"),
        ([0, 0, 0], "instruments"),
        ([0, {"program": 200}, 0, 0], "instruments[1].program"),
        ([0, 0, {"program": 1, "name": ""}, 0], "instruments[2].name"),
    ],
)
def test_bad_instruments_are_a_value_error_naming_the_field_before_any_work(generator, instruments, field):
    with pytest.raises(ValueError) as error:
        accompany(generator, b"not even MIDI", instruments=instruments)
    assert not isinstance(error.value, midi.MidiError)
    assert str(error.value).startswith(f"{field}: ")


# --- determinism --------------------------------------------------------------------------------


def test_the_same_melody_model_seed_and_instruments_give_the_same_bytes(generator):
    data = tricky_melody()
    first = accompany(generator, data, seed=5, instruments="organ")
    torch.manual_seed(0)  # the same model, built again
    again = Generator(SMALL).eval()
    assert accompany(again, data, seed=5, instruments="organ") == first
    assert accompany(generator, data, seed=5, instruments=list(PRESETS["organ"])) == first
    assert accompany(generator, data, seed=5, instruments="piano") != first


# --- the training's samples and final composition ------------------------------------------------


def _chorale(name: str, seed: int) -> gan_data.Chorale:
    rng = np.random.default_rng(seed)
    lines = [
        np.repeat(rng.integers(low, high, 16), 4) for low, high in ((64, 76), (57, 67), (50, 60), (38, 50))
    ]
    pitches = np.stack(lines).astype(np.uint8)
    onsets = np.zeros_like(pitches, dtype=bool)
    onsets[:, ::4] = True
    return gan_data.Chorale(name, pitches, onsets, 16)


def test_a_chorale_sample_writes_its_soprano_as_read_with_the_chosen_instruments(generator):
    chorale = _chorale("c", 0)
    out = parse(harmonise_chorale_melody(generator, chorale, seed=0, instruments="piano"))
    assert voices_of(out) == [(v.name, v.program) for v in PRESETS["piano"]]
    step = out.ticks_per_beat // 4
    soprano = [
        (s * step, e * step, p)
        for s, e, p in zip(*note_spans(chorale.pitches[0], chorale.onsets[0]), strict=True)
    ]
    assert [(s, e, p) for s, e, p, _ in notes_of(out.tracks[1])] == soprano
    # the default stays today's file
    pitches, onsets = harmonise(generator, chorale.pitches[0], chorale.onsets[0], 16, 0)
    assert harmonise_chorale_melody(generator, chorale, seed=0) == midi.write_chorale(
        pitches, onsets, 100, 16
    )


class _Recorder:
    def __init__(self) -> None:
        self.samples: list[bytes] = []
        self.final: dict[str, bytes] = {}

    def reference(self, values): ...
    def epoch(self, epoch, epochs, metrics): ...

    def sample(self, epoch, data):
        self.samples.append(data)

    def compositions(self, midis):
        self.final.update(midis)


@pytest.mark.parametrize("with_melody", [False, True], ids=["validation melody", "job melody"])
def test_training_writes_its_samples_and_composition_with_the_chosen_instruments(tmp_path, with_melody):
    chorales = [_chorale(f"c{i}", i) for i in range(3)]
    splits = gan_data.Splits(chorales[:2], chorales[2:], [])
    paths = Paths.from_env(
        {"SM_MODEL_DIR": str(tmp_path / "model"), "SM_OUTPUT_DATA_DIR": str(tmp_path / "out")}
    )
    recorder = _Recorder()
    melody = tricky_melody() if with_melody else None
    chosen = [{"program": 40, "name": "Violin"}, 41, 42, 43]

    train(
        Hyperparameters(epochs=1, update_ratio=1, batch_size=2),
        paths,
        Reporter([recorder]),
        melody,
        splits,
        steps_per_epoch=1,
        config=SMALL,
        instruments=chosen,
    )

    expected = [(v.name, v.program) for v in resolve(chosen)]
    assert len(recorder.samples) == 1 and voices_of(parse(recorder.samples[0])) == expected
    final = parse(recorder.final["final"])
    assert voices_of(final) == expected
    if with_melody:  # the job's melody comes back exactly in the final composition
        assert notes_of(final.tracks[1]) == sorted(MELODY) and conductor_of(final) == conductor_of(
            parse(melody)
        )


def test_training_refuses_bad_instruments_before_it_trains(tmp_path):
    paths = Paths.from_env({"SM_MODEL_DIR": str(tmp_path / "model")})
    with pytest.raises(ValueError, match=r"^instruments: unknown preset"):
        train(
            Hyperparameters(epochs=1),
            paths,
            Reporter([]),
            None,
            gan_data.Splits([], [], []),
            instruments="kazoo",
        )
    assert not (tmp_path / "model").exists()


# --- the command ---------------------------------------------------------------------------------


def test_the_command_takes_a_preset_or_json_instruments_and_refuses_a_bad_one(tmp_path, generator, capsys):
    model = tmp_path / "model.pt"
    torch.save({"generator": generator.state_dict(), "config": generator.config.to_dict()}, model)
    melody = tmp_path / "melody.mid"
    melody.write_bytes(tricky_melody())
    base = [str(model), str(melody)]

    assert generate.main([*base, str(tmp_path / "a.mid"), "--instruments", "brass"]) == 0
    assert voices_of(parse((tmp_path / "a.mid").read_bytes())) == [
        (v.name, v.program) for v in PRESETS["brass"]
    ]
    assert (tmp_path / "a.mid").read_bytes() == accompany(generator, melody, seed=0, instruments="brass")
    explicit = json.dumps([{"program": 73, "name": "Flute"}, 68, 71, 70])
    assert generate.main([*base, str(tmp_path / "b.mid"), "--instruments", explicit, "--seed", "1"]) == 0
    assert voices_of(parse((tmp_path / "b.mid").read_bytes()))[:2] == [("Flute", 73), ("Alto", 68)]

    with pytest.raises(SystemExit) as exit_:
        generate.main([*base, str(tmp_path / "c.mid"), "--instruments", "[0, 0, 0, 300]"])
    assert exit_.value.code == 2
    assert "instruments[3]: 300 is outside 0-127" in capsys.readouterr().err
    assert not (tmp_path / "c.mid").exists()


def test_voice_is_the_contracts_type():
    assert resolve("choir")[0] == Voice(midi.VOICE_PROGRAM, "Soprano")
