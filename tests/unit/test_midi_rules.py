"""One reading of MIDI (`contracts.midi`): each rule on a hand-made file, the API's check and the
training's reader agreeing on random and mangled files, and the API's answer for a broken one."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import mido
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import midi as rules
from gan import grid
from gan import midi as gan_midi
from lambdas.common import melodies
from lambdas.common.errors import InvalidFieldError
from tests.unit.conftest import bucket_keys, call_api, table_items

# The upload of issue 10: a 12-byte track chunk that holds 13 bytes (its end-of-track is cut).
TRUNCATED = "TVRoZAAAAAYAAQABAeBNVHJrAAAADACQPFCDYIA8AAD/LwA="


def on(pitch: int, time: int = 0, channel: int = 0, velocity: int = 80) -> mido.Message:
    return mido.Message("note_on", note=pitch, velocity=velocity, time=time, channel=channel)


def off(pitch: int, time: int = 0, channel: int = 0) -> mido.Message:
    return mido.Message("note_off", note=pitch, velocity=0, time=time, channel=channel)


def song(*tracks: list[Any], ticks_per_beat: int = 480, type: int = 1) -> bytes:
    """A MIDI file of these tracks (lists of messages, delta times)."""
    midi = mido.MidiFile(type=type, ticks_per_beat=ticks_per_beat)
    midi.tracks.extend(mido.MidiTrack(track) for track in tracks)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def quarters(*pitches: int, channel: int = 0, tpb: int = 480) -> list[mido.Message]:
    return [m for p in pitches for m in (on(p, channel=channel), off(p, tpb, channel=channel))]


def refused(data: bytes, match: str) -> str:
    """Both readers refuse the file with the same message, and the API names the field."""
    with pytest.raises(rules.MidiError, match=match) as error:
        rules.read_melody(data)
    with pytest.raises(gan_midi.MidiError, match=match):
        gan_midi.read_melody(data)
    with pytest.raises(InvalidFieldError, match=match) as api_error:
        melodies.count_notes(data)
    assert api_error.value.field == "melody.midi_base64"
    return str(error.value)


def test_the_training_reader_and_the_api_share_the_error_and_the_grid_constants():
    assert gan_midi.MidiError is rules.MidiError and gan_midi.TickNote is rules.Note
    assert rules.STEPS_PER_QUARTER == grid.STEPS_PER_QUARTER
    assert rules.GRID_EPSILON == grid._EPSILON
    for position in (0.0, 0.4, 1.0, 1.0 + 1e-7, 2.5, 16.0 - 1e-7):
        assert rules.first_step(position) == grid.first_step(position)


def test_a_plain_melody_counts_its_notes_alike_everywhere():
    data = song([mido.MetaMessage("set_tempo", tempo=600000)], quarters(60, 62, 64, 65))
    assert melodies.count_notes(data) == 4
    melody = gan_midi.read_melody(data)
    assert len(melody.notes) == 4 and list(melody.pitches[::4]) == [60, 62, 64, 65]
    assert melody.tempo_bpm == 100


# --- drums, channels, tracks -------------------------------------------------------------------


def test_notes_only_on_the_drum_channel_are_no_melody():
    message = refused(song(quarters(36, 38, 36, 38, channel=9)), "no melody notes outside the drum channel")
    assert "drum tracks are ignored" in message


def test_drum_notes_beside_the_melody_in_one_track_are_left_out():
    track = [on(36, channel=9), on(67), off(36, 240, channel=9), off(67, 240)]
    melody = gan_midi.read_melody(song(track))
    assert [n.pitch for n in melody.notes] == [67] and melody.pitches[0] == 67
    assert melodies.count_notes(song(track)) == 1


def test_a_drum_track_before_the_melody_track_is_skipped():
    data = song(quarters(36, 36, channel=9), quarters(72, 74))
    assert [n.pitch for n in gan_midi.read_melody(data).notes] == [72, 74]


def test_the_melody_is_the_lowest_channel_of_a_type_0_file():
    # melody on channel 1, a bass line on channel 0 written first: channel 0 is the melody
    track = [on(72, channel=1), on(48), off(72, 480, channel=1), off(48)]
    track += [on(74, channel=1), off(74, 480, channel=1)]
    data = song(track, type=0)
    assert [n.pitch for n in gan_midi.read_melody(data).notes] == [48]
    lines = gan_midi.read_tracks(data, count=2)
    assert [[n.pitch for n in notes] for notes in lines.notes] == [[48], [72, 74]]


def test_empty_tracks_and_a_thousand_tracks_are_read_at_once():
    empty: list[Any] = []
    data = song([mido.MetaMessage("set_tempo", tempo=500000)], *[empty] * 998, quarters(60, 64, 67))
    assert len(mido.MidiFile(file=io.BytesIO(data)).tracks) == 1000
    started = time.perf_counter()
    assert melodies.count_notes(data) == 3
    assert len(gan_midi.read_melody(data).notes) == 3
    assert time.perf_counter() - started < 2


def test_a_file_without_any_note_says_so():
    refused(song([mido.MetaMessage("set_tempo", tempo=500000)], []), "has no notes")


# --- notes: chords, zero-length, unclosed, repeated -------------------------------------------


def test_a_chord_stays_whole_in_the_notes_and_its_top_note_is_the_line():
    track = [on(60), on(64), on(67), off(60, 960), off(64), off(67), on(65), off(65, 960)]
    melody = gan_midi.read_melody(song(track))
    assert sorted(n.pitch for n in melody.notes) == [60, 64, 65, 67]
    assert list(melody.pitches[[0, 4, 8]]) == [67, 67, 65]
    assert melodies.count_notes(song(track)) == 4


def test_zero_length_notes_are_dropped():
    # an on and off at one tick, then a real quarter: only the quarter is a note
    track = [on(61), off(61), on(62, 480), off(62, 480)]
    melody = gan_midi.read_melody(song(track))
    assert [(n.start, n.end, n.pitch) for n in melody.notes] == [(480, 960, 62)]
    assert melodies.count_notes(song(track)) == 1


def test_a_melody_of_zero_length_notes_only_has_no_notes():
    refused(song([on(60), off(60), on(62, 480), off(62)]), "has no notes")


def test_a_repeated_note_whose_on_comes_before_the_previous_off_stays_two_notes():
    track = [on(64), on(64, 480), off(64), off(64, 480)]
    notes = gan_midi.read_melody(song(track)).notes
    assert [(n.start, n.end) for n in notes] == [(0, 480), (480, 960)]


def test_a_note_never_closed_is_dropped():
    track = [on(60), off(60, 480), on(62)]
    assert [n.pitch for n in gan_midi.read_melody(song(track)).notes] == [60]
    refused(song([on(62, 480)]), "has no notes")


def test_a_velocity_zero_note_on_closes_the_note():
    track = [on(60), on(60, 480, velocity=0)]
    assert [(n.start, n.end) for n in gan_midi.read_melody(song(track)).notes] == [(0, 480)]


def test_notes_between_grid_points_only_are_refused():
    # two 32nds, each starting half a 16th after a grid point: neither covers a step's start
    track = [on(60, 60), off(60, 60), on(62, 60), off(62, 60)]
    refused(song(track), "shorter than a 16th")


# --- time: division, tempo, meter, length -----------------------------------------------------


def test_smpte_time_is_refused_with_what_to_do():
    data = bytearray(song(quarters(60, 62)))
    data[12:14] = bytes([0xE7, 0x28])  # -25 frames per second, 40 ticks per frame
    assert "SMPTE" in refused(bytes(data), "SMPTE frames, not in beats")


def test_a_time_base_of_zero_ticks_is_refused():
    data = bytearray(song(quarters(60, 62)))
    data[12:14] = b"\x00\x00"
    refused(bytes(data), "0 ticks per quarter note")


@pytest.mark.parametrize("tpb", [1, 3, 96, 32767])
def test_any_resolution_lands_on_the_same_grid(tpb):
    track = [on(60), off(60, tpb), on(62), off(62, 2 * tpb)]
    melody = gan_midi.read_melody(song(track, ticks_per_beat=tpb))
    assert list(melody.pitches[:12]) == [60] * 4 + [62] * 8


def test_tempo_changes_do_not_move_notes_and_the_first_tempo_is_reported():
    conductor = [
        mido.MetaMessage("set_tempo", tempo=1_000_000),
        mido.MetaMessage("set_tempo", tempo=250_000, time=480),
        mido.MetaMessage("set_tempo", tempo=0, time=480),  # nonsense, kept verbatim, never read
    ]
    data = song(conductor, quarters(60, 62, 64))
    melody = gan_midi.read_melody(data)
    assert melody.tempo_bpm == 60 and list(melody.pitches[::4][:3]) == [60, 62, 64]
    assert [m.tempo for _, m in melody.conductor] == [1_000_000, 250_000, 0]


def test_a_tempo_and_meter_in_the_melody_track_count_too():
    track = [mido.MetaMessage("set_tempo", tempo=750_000), mido.MetaMessage("time_signature", numerator=3,
             denominator=4), *quarters(60, 62, 64, 65, 67, 69)]
    melody = gan_midi.read_melody(song(track))
    assert melody.tempo_bpm == 80 and melody.time_signature == (3, 4) and melody.steps_per_bar == 12


def test_a_meter_that_does_not_fill_whole_sixteenths_is_refused():
    track = [mido.MetaMessage("time_signature", numerator=7, denominator=32), *quarters(60, 62)]
    refused(song(track), "7/32 does not fill whole 16th notes")


def test_a_meter_whose_bar_is_over_sixteen_quarters_is_refused():
    track = [mido.MetaMessage("time_signature", numerator=255, denominator=1), *quarters(60, 62)]
    refused(song(track), "255/1 makes a bar of 1020 quarter notes; at most 16")
    track = [mido.MetaMessage("time_signature", numerator=16, denominator=4), *quarters(60, 62)]
    assert gan_midi.read_melody(song(track)).steps_per_bar == 64


def test_a_meter_of_zero_beats_is_refused():
    track = [mido.MetaMessage("time_signature", numerator=0, denominator=4), *quarters(60, 62)]
    refused(song(track), "a bar without beats")


def test_a_melody_over_the_longest_is_refused_and_one_at_it_is_read():
    bars = rules.MAX_BARS
    assert melodies.count_notes(song([on(60), off(60, bars * 4 * 480)])) == 1
    refused(song([on(60), off(60, bars * 4 * 480 + 480)]), f"{bars + 1} bars long; at most {bars}")


def test_a_huge_delta_time_is_refused_at_once():
    started = time.perf_counter()
    refused(song([on(60), off(60, 0x0FFFFFFF)], ticks_per_beat=1), "bars long")
    assert time.perf_counter() - started < 1


def test_events_far_past_the_melody_are_refused_at_once_before_the_notes_are_looked_at():
    # a few bytes that say "a year later" (an unclosed note, a text event): the file's length counts
    for late in ([on(62, 0x0FFFFFFF)], [mido.MetaMessage("text", text="the end", time=0x0FFFFFFF)]):
        started = time.perf_counter()
        refused(song(quarters(60, 62) + late), "bars long; at most 256")
        assert time.perf_counter() - started < 1


def test_silence_after_the_melody_within_the_file_limit_does_not_count():
    # 300 bars of 4/4 in ticks: under 256 bars of 16/4, and the melody itself is 1 bar
    data = song([mido.MetaMessage("text", text="the end", time=300 * 4 * 480)], quarters(60, 62))
    assert melodies.count_notes(data) == 2 and gan_midi.read_melody(data).steps == 16


# --- the file itself --------------------------------------------------------------------------


def test_the_truncated_upload_of_issue_10_is_refused_by_both():
    message = refused(base64.b64decode(TRUNCATED), "not a readable MIDI file")
    assert "EOFError" in message


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"MThd",
        b"MThd\x00\x00\x00\x06\x00\x07\x00\x01\x01\xe0",  # format 7
        b"MThd\x00\x00\x01\x00" + bytes(8),  # a 256-byte header in 16 bytes
        b"RIFF not a midi file",
        # two tracks declared, one present
        b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x00\x04\x00\xff\x2f\x00",
    ],
)
def test_broken_headers_and_missing_tracks_are_unreadable(data):
    refused(data, "not a readable MIDI file")


def test_a_data_byte_over_127_is_unreadable():
    data = bytearray(song(quarters(60)))
    data[data.index(bytes([0x90, 60])) + 1] = 0xBC
    refused(bytes(data), "not a readable MIDI file")


def test_a_file_over_the_size_limit_is_refused():
    pad = [mido.MetaMessage("text", text="x" * 60_000)] * 18
    data = song(pad, quarters(60))
    assert len(data) > rules.MAX_FILE_BYTES
    refused(data, "bytes; at most")


# --- the API, through its handler -------------------------------------------------------------


def test_the_api_answers_the_truncated_upload_with_a_400_naming_the_field(aws: None) -> None:
    response = call_api("POST", "/jobs", body={"melody": {"midi_base64": TRUNCATED}})
    assert response.status == 400
    assert response.body["error"]["field"] == "melody.midi_base64"
    assert "not a readable MIDI file" in response.body["error"]["message"]
    assert table_items() == [] and bucket_keys() == []


def test_the_api_answers_a_drum_only_upload_with_a_400_naming_the_field(aws: None) -> None:
    upload = base64.b64encode(song(quarters(36, 38, channel=9))).decode()
    response = call_api("POST", "/jobs", body={"melody": {"midi_base64": upload}})
    assert response.status == 400 and response.body["error"]["field"] == "melody.midi_base64"
    assert "drum channel" in response.body["error"]["message"]


# --- fuzz: the API's check and the training's reader agree -----------------------------------


def _vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


# Mostly musical lengths; now and then an odd one, a long silence, or "a year later".
_DELTA = st.one_of(
    st.sampled_from([480, 240, 120, 960, 0, 0]),
    st.integers(0, 2000),
    st.sampled_from([1, 59, 61, 2**16, 2**20, 0x0FFFFFFF]),
)
_CHANNEL = st.sampled_from([0, 0, 0, 1, 9, 15])
_PITCH = st.one_of(st.integers(58, 66), st.sampled_from([0, 127]))
_EVENT = st.one_of(
    # a whole note: on, then off after a length (0: zero-length), the common case
    *[st.tuples(st.just(0x100), _CHANNEL, _PITCH, st.integers(1, 127), _DELTA)] * 8,
    st.tuples(st.just(0x90), _CHANNEL, _PITCH, st.integers(0, 127)),  # a lone note on (velocity 0: off)
    st.tuples(st.just(0x80), _CHANNEL, _PITCH, st.integers(0, 127)),  # a lone note off
    st.tuples(st.just(0xB0), _CHANNEL, st.integers(0, 127), st.integers(0, 127)),  # control change
    st.tuples(st.just(0x51), st.integers(0, 2**24 - 1)),  # set tempo
    # a time signature n/2**d: mostly a usable one, now and then 0/4 or 3/64
    st.tuples(st.just(0x58), st.sampled_from([1, 2, 3, 4, 6, 0, 7]), st.sampled_from([1, 2, 2, 3, 0, 6])),
)


def _event_bytes(event: tuple[int, ...]) -> bytes:
    kind = event[0]
    if kind == 0x100:
        _, channel, pitch, velocity, length = event
        return bytes([0x90 | channel, pitch, velocity]) + _vlq(length) + bytes([0x80 | channel, pitch, 0])
    if kind in (0x90, 0x80, 0xB0):
        return bytes([kind | event[1], event[2], event[3]])
    if kind == 0x51:
        return b"\xff\x51\x03" + event[1].to_bytes(3, "big")
    return bytes([0xFF, 0x58, 0x04, event[1], event[2], 24, 8])


@st.composite
def midi_files(draw: st.DrawFn) -> bytes:
    """Mostly well-formed files of random events, a share of them mangled, or plain bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    division = draw(st.sampled_from([480] * 6 + [96, 1, 3, 0, 0xE728]))
    n_tracks = draw(st.sampled_from([1] * 8 + [2] * 4 + [3, 1000]))
    track_events = st.lists(st.tuples(_DELTA, _EVENT), min_size=1, max_size=12)
    shapes = draw(st.lists(track_events, min_size=1, max_size=3))
    chunks = []
    for index in range(n_tracks):
        events = shapes[index % len(shapes)] if index < 3 or index == n_tracks - 1 else []
        body = b"".join(_vlq(delta) + _event_bytes(event) for delta, event in events) + b"\x00\xff\x2f\x00"
        chunks.append(b"MTrk" + len(body).to_bytes(4, "big") + body)
    file_type = 0 if n_tracks == 1 else 1
    data = bytearray(b"MThd\x00\x00\x00\x06" + bytes([0, file_type]) + n_tracks.to_bytes(2, "big")
                     + division.to_bytes(2, "big") + b"".join(chunks))
    mangle = draw(st.sampled_from(["none"] * 5 + ["truncate", "flip", "flip", "insert"]))
    if mangle == "truncate":
        del data[draw(st.integers(0, len(data))):]
    elif mangle == "flip":
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif mangle == "insert":
        data[draw(st.integers(0, len(data))):0] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(midi_files())
def test_the_api_accepts_a_file_exactly_when_the_training_reads_a_melody_from_it(data: bytes) -> None:
    try:
        notes = melodies.count_notes(data)
    except InvalidFieldError as e:
        assert e.field == "melody.midi_base64" and e.message
        notes = None
    try:
        melody = gan_midi.read_melody(data)
    except gan_midi.MidiError:
        melody = None
    assert (notes is None) == (melody is None)
    if melody is not None:
        # what the training does with it: the grid holds a note, and the accompaniment writes
        assert notes == len(melody.notes) >= 1
        assert melody.onsets.any() and (melody.pitches > 0).any()
        assert melody.steps % melody.steps_per_bar == 0 and melody.tempo_bpm > 0
        lines = np.stack([melody.pitches] * 4)
        out = gan_midi.write_accompaniment(melody, lines, np.stack([melody.onsets] * 4))
        assert len(mido.MidiFile(file=io.BytesIO(out)).tracks) == 5
