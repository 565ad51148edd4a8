"""MIDI in and out: a user's melody onto the 16th-note grid, and four voices back to a 4-track MIDI.

Reading is `contracts.midi`'s: that module alone decides whether a file is acceptable and what
its melody notes, meter, pickup, tempo and length are (the api Lambda checks an upload with the
same module, so a file the API accepts is one this reader reads). Here those notes are only put
on the grid: step = tick / (ticks per beat / 4), so any tempo (and tempo changes) and any
resolution land on the same grid; a pickup (a short first bar, e.g. 1/4 before 3/4) is padded
with rests in front so bar lines fall every `steps_per_bar`; writing removes that padding
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
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
import pretty_midi

from contracts import midi as rules
from contracts.instruments import DEFAULT as DEFAULT_INSTRUMENTS
from contracts.instruments import Voice, resolve

# Re-exported: what callers of gan.midi have always found here.
from contracts.midi import CONDUCTOR_EVENTS as CONDUCTOR_EVENTS
from contracts.midi import DEFAULT_TEMPO_BPM as DEFAULT_TEMPO_BPM
from contracts.midi import Conductor as Conductor
from contracts.midi import MidiError as MidiError

from .grid import STEPS_PER_QUARTER, note_spans, render_line

VOICE_NAMES = tuple(voice.name for voice in DEFAULT_INSTRUMENTS)  # Soprano, Alto, Tenor, Bass
# General MIDI "Choir Aahs" (program 53, 0-based 52): a chorale is sung (the default preset).
VOICE_PROGRAM = DEFAULT_INSTRUMENTS[0].program
VOICE_VELOCITY = (90, 75, 75, 80)  # the melody a little louder than the inner voices
OUTPUT_RESOLUTION = 480  # ticks per quarter note in files we write

# A note as the MIDI file holds it: start and end in ticks from the file's start.
TickNote = rules.Note


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


def _bytes(data: bytes | Path | str) -> bytes:
    return Path(data).read_bytes() if isinstance(data, Path | str) else bytes(data)


def _on_the_grid(reading: rules.Reading) -> Lines:
    """`contracts.midi`'s reading rendered onto the grid (every rule was applied there)."""
    rendered = [
        render_line(
            reading.n_steps, [(reading.step(n.start), reading.step(n.end), n.pitch, False) for n in notes]
        )
        for notes in reading.parts
    ]
    if not any(p.any() for p, _ in rendered):  # contracts.midi refuses such a file first
        raise MidiError(
            "the MIDI file's notes are all shorter than a 16th note: write the melody in longer notes"
        )
    return Lines(
        pitches=np.stack([p for p, _ in rendered]),
        onsets=np.stack([o for _, o in rendered]),
        steps_per_bar=reading.steps_per_bar,
        pickup_steps=reading.pickup_steps,
        tempo_bpm=reading.tempo_bpm,
        time_signature=reading.time_signature,
        notes=reading.parts,
        resolution=reading.resolution,
        conductor=reading.conductor,
    )


def read_tracks(data: bytes | Path | str, count: int | None = None, max_bars: int | None = None) -> Lines:
    """The first `count` parts with notes (all of them if None) on one bar-aligned grid: a part
    is one channel of one track (`contracts.midi`, which applies every rule).

    Drum tracks are ignored; a track with chords keeps its top line. Raises `MidiError` for a
    file that is not MIDI, has no notes, has fewer than `count` note tracks, or (with
    `max_bars`) is longer than that many bars. No size limit: the dataset's files are the
    operator's (a user's melody goes through `read_melody`)."""
    return _on_the_grid(rules.read(_bytes(data), count=count, max_bars=max_bars, max_bytes=None))


def read_melody(data: bytes | Path | str, max_bars: int | None = rules.MAX_BARS) -> Melody:
    """A MIDI file's melody: its first part with notes, of any tempo, resolution, key, meter or
    pickup, up to `max_bars` long (`contracts.midi.MAX_BARS` unless given; None: no limit), as
    `contracts.midi.read_melody` reads it: the rules the API checks an upload against. Raises
    `MidiError` (a ValueError) for a file that is not MIDI, has no notes, or is too long."""
    lines = _on_the_grid(rules.read_melody(_bytes(data), max_bars=max_bars))
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
