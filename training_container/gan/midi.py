"""MIDI in and out: a user's melody onto the 16th-note grid, and four voices back to a 4-track MIDI.

Reading works in ticks, not seconds, so any tempo (and tempo changes) and any resolution land
on the same grid: step = tick / (ticks per beat / 4). The time signature sets the bar length; a
pickup is read the way MIDI files spell it, as a short first bar (e.g. 1/4 before 3/4), and is
padded with rests in front so bar lines fall every `steps_per_bar`; writing removes that padding
again, so the output lines up with the input. pretty_midi has no roll-to-MIDI writer, so notes
are written from the onset channel here (a repeated pitch stays two notes).

Two writers: `write_chorale` writes voice lines that all live on the grid (a chorale from the
dataset, the per-epoch samples); `write_accompaniment` writes a user's melody exactly as it was
read (its notes, ticks per beat, tempo map and time signatures) over the generated voices, which
alone are on the grid. Each voice's General MIDI program and track name come from
`contracts.instruments` (the default is today's: four Choir Aahs tracks named by their part).
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
import pretty_midi

from contracts.instruments import DEFAULT as DEFAULT_INSTRUMENTS
from contracts.instruments import Voice, resolve

from .grid import STEPS_PER_QUARTER, note_spans, render_line

VOICE_NAMES = tuple(voice.name for voice in DEFAULT_INSTRUMENTS)  # Soprano, Alto, Tenor, Bass
# General MIDI "Choir Aahs" (program 53, 0-based 52): a chorale is sung (the default preset).
VOICE_PROGRAM = DEFAULT_INSTRUMENTS[0].program
VOICE_VELOCITY = (90, 75, 75, 80)  # the melody a little louder than the inner voices
OUTPUT_RESOLUTION = 480  # ticks per quarter note in files we write
DEFAULT_TEMPO_BPM = 120.0  # MIDI's own default when a file has no tempo event
# The file-wide meta events a melody's output keeps verbatim (from whichever track holds them).
CONDUCTOR_EVENTS = ("set_tempo", "time_signature", "key_signature")
MAX_BAR_QUARTERS = 16  # the longest bar a length limit allows for before the meter is read (16/4)


class MidiError(ValueError):
    """A MIDI file we cannot use; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class TickNote:
    """A note as the MIDI file holds it: start and end in ticks from the file's start."""

    start: int
    end: int
    pitch: int
    velocity: int


Conductor = tuple[tuple[int, mido.MetaMessage], ...]  # (absolute tick, meta event), in file order


@dataclass
class Melody:
    """A melody on the grid, bar-aligned, with what writing the result back needs."""

    pitches: np.ndarray  # uint8 [T]: MIDI pitch sounding per 16th step, 0 = rest
    onsets: np.ndarray  # bool [T]: True where a note starts
    steps_per_bar: int  # T is a multiple of it
    pickup_steps: int  # rest steps added in front so that bar lines fall every steps_per_bar
    tempo_bpm: float  # the input's first tempo (quarter notes per minute)
    time_signature: tuple[int, int]  # the input's main meter, e.g. (3, 4)
    # The melody as given, for `write_accompaniment`: its notes, off the grid or not, in the
    # input's ticks; the input's ticks per quarter note; its tempo, meter and key events.
    notes: tuple[TickNote, ...] = ()
    resolution: int = OUTPUT_RESOLUTION
    conductor: Conductor = ()

    @property
    def steps(self) -> int:
        return int(self.pitches.shape[0])


@dataclass
class Lines:
    """Several tracks read onto one grid (what `read_melody` and the dataset builder share)."""

    pitches: np.ndarray  # uint8 [V, T]
    onsets: np.ndarray  # bool [V, T]
    steps_per_bar: int
    pickup_steps: int
    tempo_bpm: float
    time_signature: tuple[int, int]
    notes: tuple[tuple[TickNote, ...], ...] = ()  # per track, as given (see `Melody`)
    resolution: int = OUTPUT_RESOLUTION
    conductor: Conductor = ()


# --- reading ---------------------------------------------------------------------------------


def _conductor(song: mido.MidiFile) -> Conductor:
    """The tempo, time and key signature events at their absolute ticks, from every track (a
    DAW reads them from any track; pretty_midi's tempo map only from the first)."""
    events = []
    for index, track in enumerate(song.tracks):
        tick = 0
        for message in track:
            tick += message.time
            if message.type in CONDUCTOR_EVENTS:
                events.append((tick, index, message.copy(time=0)))
    events.sort(key=lambda event: event[:2])  # stable: a track's events keep their order
    return tuple((tick, message) for tick, _, message in events)


def _too_long(bars: float, max_bars: int) -> MidiError:
    return MidiError(
        f"the melody is {math.ceil(bars)} bars long; at most {max_bars} are accompanied at once: "
        "split it into shorter pieces"
    )


def _parse(data: bytes | Path | str, max_bars: int | None = None) -> tuple[pretty_midi.PrettyMIDI, Conductor]:
    raw = Path(data).read_bytes() if isinstance(data, Path | str) else bytes(data)
    try:
        song = mido.MidiFile(file=io.BytesIO(raw))
    except Exception as error:  # mido raises many types for broken files
        raise _unreadable(error) from error
    if max_bars is not None:
        # Before pretty_midi, whose tick table is as long as the file (a few bytes of MIDI can
        # say "a year later"): no bar of any meter here is longer than MAX_BAR_QUARTERS.
        ticks = max((sum(message.time for message in track) for track in song.tracks), default=0)
        if ticks > max_bars * MAX_BAR_QUARTERS * song.ticks_per_beat:
            raise _too_long(ticks / song.ticks_per_beat / MAX_BAR_QUARTERS, max_bars)
    try:
        conductor = _conductor(song)  # before pretty_midi, which turns the times absolute in place
        with warnings.catch_warnings():
            # pretty_midi warns about meta events on non-zero tracks, which are harmless here.
            warnings.simplefilter("ignore")
            return pretty_midi.PrettyMIDI(mido_object=song), conductor
    except Exception as error:  # pretty_midi raises many types for broken files
        raise _unreadable(error) from error


def _unreadable(error: Exception) -> MidiError:
    return MidiError(
        "the file is not a readable MIDI file (a Standard MIDI File, .mid, is expected): "
        f"{type(error).__name__}: {error}"
    )


def _bar_steps(numerator: int, denominator: int) -> float:
    return numerator * 4 * STEPS_PER_QUARTER / denominator


def _meter(
    midi: pretty_midi.PrettyMIDI, ticks_per_step: float, last_step: float
) -> tuple[int, int, int, int]:
    """(steps_per_bar, pickup_steps, numerator, denominator) from the time signatures.

    The main meter is the one in force longest; a first signature shorter than one bar of the
    next (how MIDI spells an anacrusis) is a pickup, padded in front up to a full bar."""
    changes = sorted(midi.time_signature_changes, key=lambda ts: ts.time)
    if not changes:
        return 4 * STEPS_PER_QUARTER, 0, 4, 4
    starts = [midi.time_to_tick(ts.time) / ticks_per_step for ts in changes]
    spans = [
        max(end, start) - start
        for start, end in zip(starts, [*starts[1:], max(last_step, starts[-1])], strict=True)
    ]
    main = changes[int(np.argmax(spans))]
    bar = _bar_steps(main.numerator, main.denominator)
    if bar != int(bar):
        raise MidiError(
            f"the time signature {main.numerator}/{main.denominator} does not fill whole 16th notes; "
            "save the melody in a meter such as 4/4, 3/4 or 6/8"
        )
    pickup = 0
    if len(changes) > 1 and starts[0] <= 0 and 0 < spans[0] < bar and changes[0] is not main:
        pickup = round(bar - spans[0])
    return int(bar), pickup, main.numerator, main.denominator


def _tick_notes(midi: pretty_midi.PrettyMIDI, track: pretty_midi.Instrument) -> tuple[TickNote, ...]:
    """A track's notes in the file's ticks, in time order. pretty_midi keeps notes in seconds,
    mapped from ticks through its tick → time table; time_to_tick looks a time up in that same
    table, so it gives back the file's tick exactly."""
    notes = (
        TickNote(midi.time_to_tick(n.start), midi.time_to_tick(n.end), n.pitch, n.velocity)
        for n in track.notes
    )
    return tuple(sorted(notes, key=lambda note: (note.start, note.pitch, note.end)))


def read_tracks(data: bytes | Path | str, count: int | None = None, max_bars: int | None = None) -> Lines:
    """The first `count` tracks with notes (all of them if None) on one bar-aligned grid.

    Drum tracks are ignored; a track with chords keeps its top line. Raises `MidiError` for a
    file that is not MIDI, has no notes, has fewer than `count` note tracks, or (with
    `max_bars`) is longer than that many bars."""
    midi, conductor = _parse(data, max_bars)
    tracks = [inst for inst in midi.instruments if not inst.is_drum and inst.notes]
    if not tracks:
        raise MidiError(
            "the MIDI file has no notes (drum tracks are ignored): export the melody as a "
            "non-drum track with at least one note"
        )
    if count is not None and len(tracks) < count:
        raise MidiError(
            f"the MIDI file has {len(tracks)} note track(s) but {count} are needed "
            "(melody, alto, tenor, bass: one voice per track)"
        )
    tracks = tracks[:count] if count is not None else tracks
    ticks_per_step = midi.resolution / STEPS_PER_QUARTER
    as_given = tuple(_tick_notes(midi, track) for track in tracks)
    timed = [
        [(n.start / ticks_per_step, n.end / ticks_per_step, n.pitch, False) for n in notes]
        for notes in as_given
    ]
    last = max(end for notes in timed for _, end, _, _ in notes)
    steps_per_bar, pickup, numerator, denominator = _meter(midi, ticks_per_step, last)
    n_steps = -(-(round(last) + pickup) // steps_per_bar) * steps_per_bar
    if max_bars is not None and n_steps // steps_per_bar > max_bars:
        raise _too_long(n_steps / steps_per_bar, max_bars)
    rendered = [
        render_line(n_steps, [(s + pickup, e + pickup, p, t) for s, e, p, t in notes]) for notes in timed
    ]
    if not any(p.any() for p, _ in rendered):
        raise MidiError(
            "the MIDI file's notes are all shorter than a 16th note: write the melody in longer notes"
        )
    _, tempi = midi.get_tempo_changes()
    return Lines(
        pitches=np.stack([p for p, _ in rendered]),
        onsets=np.stack([o for _, o in rendered]),
        steps_per_bar=steps_per_bar,
        pickup_steps=pickup,
        # MIDI stores whole microseconds per beat: 70 bpm reads back as 69.99998.
        tempo_bpm=round(float(tempi[0]), 3) if len(tempi) else DEFAULT_TEMPO_BPM,
        time_signature=(numerator, denominator),
        notes=as_given,
        resolution=midi.resolution,
        conductor=conductor,
    )


def read_melody(data: bytes | Path | str, max_bars: int | None = None) -> Melody:
    """A MIDI file's melody: its first track with notes, of any length (up to `max_bars` if
    given), tempo, resolution, key, meter or pickup. Raises `MidiError` (a ValueError) for a file
    that is not MIDI, has no notes, or is too long."""
    lines = read_tracks(data, count=1, max_bars=max_bars)
    return Melody(
        pitches=lines.pitches[0],
        onsets=lines.onsets[0],
        steps_per_bar=lines.steps_per_bar,
        pickup_steps=lines.pickup_steps,
        tempo_bpm=lines.tempo_bpm,
        time_signature=lines.time_signature,
        notes=lines.notes[0],
        resolution=lines.resolution,
        conductor=lines.conductor,
    )


# --- writing ---------------------------------------------------------------------------------


def _signature_for(steps: int) -> tuple[int, int]:
    """A time signature of `steps` 16ths, in the largest note value that divides it."""
    if steps % STEPS_PER_QUARTER == 0:
        return steps // STEPS_PER_QUARTER, 4
    if steps % 2 == 0:
        return steps // 2, 8
    return steps, 16


def _voice(chosen: tuple[Voice, ...], index: int) -> Voice:
    """The instrument of voice `index`; a file of more lines than four names the rest."""
    return chosen[index] if index < len(chosen) else Voice(VOICE_PROGRAM, f"Voice {index + 1}")


def _check_lines(pitches: np.ndarray, onsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pitches, onsets = np.asarray(pitches), np.asarray(onsets, dtype=bool)
    if pitches.ndim != 2 or pitches.shape != onsets.shape:
        raise ValueError(
            f"pitches and onsets must both be [voices, steps]; got {pitches.shape}, {onsets.shape}"
        )
    return pitches, onsets


def chorale_midi(
    pitches: np.ndarray,
    onsets: np.ndarray,
    tempo_bpm: float,
    steps_per_bar: int,
    pickup_steps: int = 0,
    time_signature: tuple[int, int] | None = None,
    instruments: object = None,
) -> pretty_midi.PrettyMIDI:
    """Voice lines [V, T] → a PrettyMIDI with one named track per voice, at `tempo_bpm`.

    `instruments` is anything `contracts.instruments.resolve` takes (a preset name, four
    voices; None is the choir; otherwise a ValueError naming the field). The first
    `pickup_steps` steps (the front padding `read_melody` added) are cut, and a pickup is
    written as a short first bar, so the result lines up note for note with the input. Every
    note lies on the grid here, so pretty_midi's seconds lose nothing: at OUTPUT_RESOLUTION a
    16th is 120 ticks, and each step's time maps back to its tick."""
    pitches, onsets = _check_lines(pitches, onsets)
    chosen = resolve(instruments)
    if not tempo_bpm > 0:
        raise ValueError(f"tempo_bpm must be positive, got {tempo_bpm}")
    pitches, onsets = pitches[:, pickup_steps:], onsets[:, pickup_steps:]
    seconds_per_step = 60.0 / tempo_bpm / STEPS_PER_QUARTER
    midi = pretty_midi.PrettyMIDI(resolution=OUTPUT_RESOLUTION, initial_tempo=tempo_bpm)
    numerator, denominator = time_signature or _signature_for(steps_per_bar)
    pickup = pickup_steps % steps_per_bar
    if pickup:
        midi.time_signature_changes.append(
            pretty_midi.TimeSignature(*_signature_for(steps_per_bar - pickup), 0.0)
        )
    first_bar = (steps_per_bar - pickup) % steps_per_bar
    midi.time_signature_changes.append(
        pretty_midi.TimeSignature(numerator, denominator, first_bar * seconds_per_step)
    )
    for index, (line, line_onsets) in enumerate(zip(pitches, onsets, strict=True)):
        voice = _voice(chosen, index)
        instrument = pretty_midi.Instrument(program=voice.program, name=voice.name)
        velocity = VOICE_VELOCITY[min(index, len(VOICE_VELOCITY) - 1)]
        for start, end, pitch in zip(*note_spans(line, line_onsets), strict=True):
            instrument.notes.append(
                pretty_midi.Note(
                    velocity=velocity,
                    pitch=int(pitch),
                    start=start * seconds_per_step,
                    end=end * seconds_per_step,
                )
            )
        midi.instruments.append(instrument)
    return midi


def write_chorale(
    pitches: np.ndarray,
    onsets: np.ndarray,
    tempo_bpm: float,
    steps_per_bar: int,
    pickup_steps: int = 0,
    time_signature: tuple[int, int] | None = None,
    instruments: object = None,
) -> bytes:
    """Four voice lines [4, T] (soprano, alto, tenor, bass), all on the grid → a 4-track
    Standard MIDI File, one track per voice with its instrument (`instruments`, default the choir).

    See `chorale_midi` for the layout; pass the input `Melody`'s `pickup_steps` and
    `time_signature` to line the output up with it (or use `write_accompaniment`, which keeps
    a read melody exactly)."""
    buffer = io.BytesIO()
    song = chorale_midi(pitches, onsets, tempo_bpm, steps_per_bar, pickup_steps, time_signature, instruments)
    song.write(buffer)
    return buffer.getvalue()


def _track(voice: Voice, channel: int, notes: list[TickNote]) -> mido.MidiTrack:
    """One voice's track: its name, its program, its notes (absolute ticks → MIDI's deltas)."""
    events = []
    for note in notes:
        on = mido.Message("note_on", channel=channel, note=note.pitch, velocity=note.velocity)
        events.append((note.start, 1, note.pitch, on))
        events.append((note.end, 0, note.pitch, mido.Message("note_off", channel=channel, note=note.pitch)))
    # At one tick a note ends before the next one starts, so a repeated pitch stays two notes.
    events.sort(key=lambda event: event[:3])
    track = mido.MidiTrack(
        [
            mido.MetaMessage("track_name", name=voice.name),
            mido.Message("program_change", channel=channel, program=voice.program),
        ]
    )
    now = 0
    for tick, _, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track"))
    return track


def write_accompaniment(
    melody: Melody, pitches: np.ndarray, onsets: np.ndarray, instruments: object = None
) -> bytes:
    """The melody exactly as read, over generated voices on the grid → a Standard MIDI File.

    `pitches`/`onsets` [V, T] are lines on `melody`'s grid (pickup padding included), as
    `gan.generate.harmonise` returns them: row 0 is the model's quantised view of the melody and
    is not written; the melody track is `melody.notes`, every note with its own start, end,
    pitch and velocity (triplets, grace notes and 32nds too). Track 0 carries the input's tempo
    map, time and key signatures verbatim, and the file keeps the input's ticks per beat, so
    the melody lines up tick for tick with the input. The lower voices lie on the grid in those
    ticks: step s at tick (s - pickup_steps) * resolution / 4, whatever the tempo changes do
    in seconds; what the model wrote in the pickup's padding is cut. `instruments` as in
    `chorale_midi`; voice i plays on channel i.

    mido writes this, not pretty_midi: pretty_midi holds times in seconds and writes them back
    through its own tempo map at its own resolution, so it cannot promise the input's ticks,
    tempo events or resolution; mido writes ticks as given."""
    pitches, onsets = _check_lines(pitches, onsets)
    chosen = resolve(instruments)
    cut = melody.pickup_steps
    tracks = [mido.MidiTrack()]
    now = 0
    for tick, message in melody.conductor:
        tracks[0].append(message.copy(time=tick - now))
        now = tick
    tracks[0].append(mido.MetaMessage("end_of_track"))

    def tick_of(step: int) -> int:  # the nearest tick, should a 16th not be a whole number of them
        return ((step - cut) * melody.resolution * 2 + STEPS_PER_QUARTER) // (2 * STEPS_PER_QUARTER)

    for index, (line, line_onsets) in enumerate(zip(pitches, onsets, strict=True)):
        if index == 0:
            notes = list(melody.notes)
        else:
            velocity = VOICE_VELOCITY[min(index, len(VOICE_VELOCITY) - 1)]
            notes = [
                TickNote(tick_of(max(int(start), cut)), tick_of(int(end)), int(pitch), velocity)
                for start, end, pitch in zip(*note_spans(line, line_onsets), strict=True)
                if end > cut
            ]
            notes = [note for note in notes if note.end > note.start]  # under 4 ticks per beat
        channel = index if index < 9 else index + 1  # channel 9 is General MIDI's drums
        tracks.append(_track(_voice(chosen, index), channel, notes))
    buffer = io.BytesIO()
    mido.MidiFile(type=1, ticks_per_beat=melody.resolution, tracks=tracks).save(file=buffer)
    return buffer.getvalue()
