"""MIDI in and out: a user's melody onto the 16th-note grid, and four voices back to a 4-track MIDI.

Reading works in ticks, not seconds, so any tempo (and tempo changes) and any resolution land
on the same grid: step = tick / (ticks per beat / 4). The time signature sets the bar length; a
pickup is read the way MIDI files spell it, as a short first bar (e.g. 1/4 before 3/4), and is
padded with rests in front so bar lines fall every `steps_per_bar`; writing removes that padding
again, so the output lines up with the input. pretty_midi has no roll-to-MIDI writer, so notes
are written from the onset channel here (a repeated pitch stays two notes).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi

from .grid import STEPS_PER_QUARTER, note_spans, render_line

VOICE_NAMES = ("Soprano", "Alto", "Tenor", "Bass")
# General MIDI "Choir Aahs" (program 53, 0-based 52): a chorale is sung.
VOICE_PROGRAM = 52
VOICE_VELOCITY = (90, 75, 75, 80)  # the melody a little louder than the inner voices
OUTPUT_RESOLUTION = 480  # ticks per quarter note in files we write
DEFAULT_TEMPO_BPM = 120.0  # MIDI's own default when a file has no tempo event


class MidiError(ValueError):
    """A MIDI file we cannot use; the message says what is wrong and what to do."""


@dataclass
class Melody:
    """A melody on the grid, bar-aligned, with what writing the result back needs."""

    pitches: np.ndarray  # uint8 [T]: MIDI pitch sounding per 16th step, 0 = rest
    onsets: np.ndarray  # bool [T]: True where a note starts
    steps_per_bar: int  # T is a multiple of it
    pickup_steps: int  # rest steps added in front so that bar lines fall every steps_per_bar
    tempo_bpm: float  # the input's first tempo (quarter notes per minute)
    time_signature: tuple[int, int]  # the input's main meter, e.g. (3, 4)

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


# --- reading ---------------------------------------------------------------------------------


def _parse(data: bytes | Path | str) -> pretty_midi.PrettyMIDI:
    raw = Path(data).read_bytes() if isinstance(data, Path | str) else bytes(data)
    try:
        with warnings.catch_warnings():
            # pretty_midi warns about meta events on non-zero tracks, which are harmless here.
            warnings.simplefilter("ignore")
            return pretty_midi.PrettyMIDI(io.BytesIO(raw))
    except Exception as error:  # mido and pretty_midi raise many types for broken files
        raise MidiError(
            "the file is not a readable MIDI file (a Standard MIDI File, .mid, is expected): "
            f"{type(error).__name__}: {error}"
        ) from error


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


def read_tracks(data: bytes | Path | str, count: int | None = None) -> Lines:
    """The first `count` tracks with notes (all of them if None) on one bar-aligned grid.

    Drum tracks are ignored; a track with chords keeps its top line. Raises `MidiError` for a
    file that is not MIDI, has no notes, or has fewer than `count` note tracks."""
    midi = _parse(data)
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
    timed = [
        [
            (
                midi.time_to_tick(n.start) / ticks_per_step,
                midi.time_to_tick(n.end) / ticks_per_step,
                n.pitch,
                False,
            )
            for n in track.notes
        ]
        for track in tracks
    ]
    last = max(end for notes in timed for _, end, _, _ in notes)
    steps_per_bar, pickup, numerator, denominator = _meter(midi, ticks_per_step, last)
    n_steps = -(-(round(last) + pickup) // steps_per_bar) * steps_per_bar
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
    )


def read_melody(data: bytes | Path | str) -> Melody:
    """A MIDI file's melody: its first track with notes, of any length, tempo, resolution, key,
    meter or pickup. Raises `MidiError` (a ValueError) for a file that is not MIDI or has no notes."""
    lines = read_tracks(data, count=1)
    return Melody(
        pitches=lines.pitches[0],
        onsets=lines.onsets[0],
        steps_per_bar=lines.steps_per_bar,
        pickup_steps=lines.pickup_steps,
        tempo_bpm=lines.tempo_bpm,
        time_signature=lines.time_signature,
    )


# --- writing ---------------------------------------------------------------------------------


def _signature_for(steps: int) -> tuple[int, int]:
    """A time signature of `steps` 16ths, in the largest note value that divides it."""
    if steps % STEPS_PER_QUARTER == 0:
        return steps // STEPS_PER_QUARTER, 4
    if steps % 2 == 0:
        return steps // 2, 8
    return steps, 16


def chorale_midi(
    pitches: np.ndarray,
    onsets: np.ndarray,
    tempo_bpm: float,
    steps_per_bar: int,
    pickup_steps: int = 0,
    time_signature: tuple[int, int] | None = None,
    names: Sequence[str] = VOICE_NAMES,
) -> pretty_midi.PrettyMIDI:
    """Voice lines [V, T] → a PrettyMIDI with one named choir track per voice, at `tempo_bpm`.

    The first `pickup_steps` steps (the front padding `read_melody` added) are cut, and a pickup
    is written as a short first bar, so the result lines up note for note with the input."""
    pitches, onsets = np.asarray(pitches), np.asarray(onsets, dtype=bool)
    if pitches.ndim != 2 or pitches.shape != onsets.shape:
        raise ValueError(
            f"pitches and onsets must both be [voices, steps]; got {pitches.shape}, {onsets.shape}"
        )
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
    for voice, (line, line_onsets) in enumerate(zip(pitches, onsets, strict=True)):
        name = names[voice] if voice < len(names) else f"Voice {voice + 1}"
        instrument = pretty_midi.Instrument(program=VOICE_PROGRAM, name=name)
        velocity = VOICE_VELOCITY[min(voice, len(VOICE_VELOCITY) - 1)]
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
) -> bytes:
    """Four voice lines [4, T] (soprano, alto, tenor, bass) → a 4-track Standard MIDI File.

    See `chorale_midi` for the layout; pass the input `Melody`'s `pickup_steps` and
    `time_signature` to line the output up with it."""
    buffer = io.BytesIO()
    chorale_midi(pitches, onsets, tempo_bpm, steps_per_bar, pickup_steps, time_signature).write(buffer)
    return buffer.getvalue()
