"""One reading of a melody MIDI file: whether it is acceptable, and what its melody is.

The api Lambda checks an upload with it (`lambdas.common.melodies.count_notes`: a refusal is a
`400` naming `melody.midi_base64`), and the training and the compose function read the melody
with it (`gan.midi.read_melody` renders this reading onto the 16th-note grid and nothing else),
so a file the API accepts is a file the training can use: no rule lives in two places.

Why it lives in `contracts/`: that is the one package shipped to all three places that read a
melody: the Lambda zip asset (`contracts.functions.ASSET_PACKAGES`), the compose image
(`functions.IMAGE_PACKAGES`) and the training image (`training_container/Dockerfile` copies
`contracts/` beside `gan/`). Unlike the rest of `contracts/` (standard library only), it imports
mido, which each of those three installs anyway (`lambdas/requirements.txt`,
`lambdas/compose/requirements.txt`, `training_container/requirements.txt`); nothing else
(the CDK app, the client, the local control plane) imports this module. No numpy, pretty_midi
or torch here, so the api Lambda stays small.

The rules (each refusal is a `MidiError`, a ValueError whose message says what is wrong and
what to do; they are checked in this order, except that the file's length, the first half of
rule 11, is checked right after rule 3):

1. Size: at most `MAX_FILE_BYTES` (1 MiB, the API's own body limit; it bounds the parse time).
2. A Standard MIDI File as mido reads it: an `MThd` header of at least 6 bytes, format 0, 1
   or 2, every declared track present and complete, data bytes 0-127. Anything else is "not a
   readable MIDI file".
3. Time division: ticks per quarter note, 1 to 32,767. SMPTE time (frames per second, a
   negative division in the header) and a division of 0 are refused: the grid is counted in
   beats.
4. Notes: a note-on with velocity > 0 opens a note on its channel and pitch; a note-off (or a
   note-on with velocity 0) closes every open note of that channel and pitch that began at an
   earlier tick. A note that began at the same tick is closed only when none began earlier: it
   is zero-length and dropped (so an "on" written just before the "off" of the previous note
   of the same pitch still makes two notes). A note never closed is dropped. MIDI note 0 is
   dropped (the grid's rest).
5. Drums: notes on channel 10 (index 9, General MIDI's percussion) are ignored; a file whose
   only notes are drums has no melody.
6. The melody: the notes of the first part, a part being one channel of one track that has
   notes, in track order, then channel order (in a type-0 file, the lowest channel with notes;
   in a type-1 file from a DAW, the first note-bearing track). Tracks without notes (a tempo
   track, empty tracks) are skipped; any number of tracks is fine.
7. Chords and overlaps stay in the notes as given (they are written back note for note); on
   the grid each step sounds the highest note playing at the step's start (`gan.grid`).
8. Time is ticks: a grid step is a 16th, `ticks per quarter / 4` ticks. Tempo changes never move
   a note on the grid (they are kept, verbatim, for the output). The tempo reported is the one in
   force at tick 0 (the last `set_tempo` there, from any track; 120 bpm when none, a tempo of 0
   is ignored).
9. Meter: time signatures from every track (a DAW reads them from any); none is 4/4. The main
   meter is the one in force longest up to the melody's last note; its bar must be a whole
   number of 16ths (7/32 is refused) and at most 16 quarter notes (16/4; 17/4 is refused, so
   the grid stays as bounded as rule 11 says). A first signature shorter than one bar of the next is a
   pickup, padded with rests in front up to a full bar. A signature of 0 beats is refused.
10. The grid: the melody needs one note that covers a step's start (a note shorter than a 16th
    between two steps is still written back, but the model does not see it); a melody of only
    such notes is refused.
11. Length, in two steps. First the file: its longest track (every event, end-of-track
    included) may run at most `MAX_BARS` bars of 16/4 (`MAX_BAR_QUARTERS`: a generous bar, as
    the meter is not known yet); a few bytes of MIDI can say "a year later", and such a file is
    refused before any note is looked at. This also bounds the grid the training and the
    compose function build, whatever the meter. Then the melody: its last note's end, in steps,
    rounded to the nearest step, plus the pickup, rounded up to whole bars of the main meter:
    at most `MAX_BARS` (256, the compose limit, `contracts.compositions.MAX_BARS`). The training
    reads a job's melody under the same limit, so nothing the API accepts is too long for it.
12. Tracks: any number (a thousand empty tracks read in milliseconds); the size limit bounds them.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import mido

from contracts import compositions

MAX_FILE_BYTES = 1024 * 1024  # the API's body limit (lambdas.common.parsing.MAX_BODY_BYTES)
MAX_BARS = compositions.MAX_BARS
MAX_TICKS_PER_QUARTER = 32767  # the header's division is 15 bits; the 16th set means SMPTE
STEPS_PER_QUARTER = 4  # a 16th-note grid, as gan.grid's
# As gan.grid's: a note starting a hair after a grid point belongs to that point.
GRID_EPSILON = 1e-6
MAX_BAR_QUARTERS = 16  # the longest bar of a main meter (16/4), which the file-length rule allows for
DRUM_CHANNEL = 9  # General MIDI's channel 10, counted from 0
DEFAULT_TEMPO_BPM = 120.0  # MIDI's own default when a file has no tempo event
DEFAULT_METER = (4, 4)
# The file-wide meta events the output keeps verbatim (from whichever track holds them).
CONDUCTOR_EVENTS = ("set_tempo", "time_signature", "key_signature")

Conductor = tuple[tuple[int, mido.MetaMessage], ...]  # (absolute tick, meta event), in file order


class MidiError(ValueError):
    """A MIDI file we cannot use; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Note:
    """A note as the MIDI file holds it: start and end in ticks from the file's start."""

    start: int
    end: int
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Reading:
    """What a file's first `count` parts are, on the file's ticks and the 16th-note grid."""

    resolution: int  # ticks per quarter note
    parts: tuple[tuple[Note, ...], ...]  # each part's notes in time order (start, pitch, end)
    steps_per_bar: int
    pickup_steps: int  # rest steps padded in front so that bar lines fall every steps_per_bar
    n_steps: int  # the grid's length: a whole number of bars, pickup padding included
    time_signature: tuple[int, int]  # the main meter
    tempo_bpm: float
    conductor: Conductor = field(default=())

    @property
    def melody(self) -> tuple[Note, ...]:
        return self.parts[0]

    @property
    def bars(self) -> int:
        return self.n_steps // self.steps_per_bar

    def step(self, tick: int) -> float:
        """A tick's position on the grid, in steps from the grid's start (pickup padding included)."""
        return step_of(tick, self.resolution) + self.pickup_steps


def step_of(tick: int, resolution: int) -> float:
    """A tick's position in 16th steps from the file's start (the one formula for it)."""
    return tick / (resolution / STEPS_PER_QUARTER)


def first_step(position: float) -> int:
    """The first grid step at or after `position` (in steps), as `gan.grid.first_step`."""
    return math.ceil(position - GRID_EPSILON)


def read_melody(data: bytes, max_bars: int | None = MAX_BARS) -> Reading:
    """The melody of a file (its first part) under every rule above; `MidiError` otherwise."""
    return read(data, count=1, max_bars=max_bars, max_bytes=MAX_FILE_BYTES)


def read(
    data: bytes,
    count: int | None = 1,
    max_bars: int | None = MAX_BARS,
    max_bytes: int | None = MAX_FILE_BYTES,
) -> Reading:
    """The first `count` parts (every part if None) on one bar-aligned grid; `MidiError` for a
    file that breaks a rule, has fewer than `count` parts or (with `max_bars`) is too long."""
    if max_bytes is not None and len(data) > max_bytes:
        raise MidiError(
            f"the MIDI file is {len(data)} bytes; at most {max_bytes} ({max_bytes // 1024} KiB) are read: "
            "a melody is far smaller, split it into shorter pieces"
        )
    song = _parse(data)
    resolution = _resolution(song.ticks_per_beat)
    if max_bars is not None:
        # Before the meter is known: no bar of any meter accepted here is longer than 16/4.
        ticks = max((sum(message.time for message in track) for track in song.tracks), default=0)
        if ticks > max_bars * MAX_BAR_QUARTERS * resolution:
            raise _too_long(ticks / resolution / MAX_BAR_QUARTERS, max_bars)
    parts = _parts(song)
    if not parts:
        raise MidiError(_no_notes(song))
    if count is not None and len(parts) < count:
        raise MidiError(
            f"the MIDI file has {len(parts)} note track(s) but {count} are needed "
            "(melody, alto, tenor, bass: one voice per track)"
        )
    chosen = tuple(parts[:count] if count is not None else parts)
    conductor = _conductor(song)
    last = max(step_of(note.end, resolution) for notes in chosen for note in notes)
    steps_per_bar, pickup, meter = _meter(conductor, resolution, last)
    n_steps = -(-(round(last) + pickup) // steps_per_bar) * steps_per_bar
    if max_bars is not None and n_steps // steps_per_bar > max_bars:
        raise _too_long(n_steps / steps_per_bar, max_bars)
    reading = Reading(
        resolution=resolution,
        parts=chosen,
        steps_per_bar=steps_per_bar,
        pickup_steps=pickup,
        n_steps=n_steps,
        time_signature=meter,
        tempo_bpm=_tempo_bpm(conductor),
        conductor=conductor,
    )
    if not any(_covers_a_step(reading, note) for notes in chosen for note in notes):
        raise MidiError(
            "the MIDI file's notes are all shorter than a 16th note: write the melody in longer notes"
        )
    return reading


# --- the rules -------------------------------------------------------------------------------


def _parse(data: bytes) -> mido.MidiFile:
    if data[:4] == b"MThd":  # mido reads a header of any declared length and any format: not we
        size, file_format = int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:10], "big")
        if not 6 <= size <= len(data) - 8:
            raise _unreadable(f"its header says {size} bytes, where 6 are expected")
        if file_format > 2:
            raise _unreadable(f"its format is {file_format}, where 0, 1 or 2 are expected")
    try:
        return mido.MidiFile(file=io.BytesIO(data))
    except Exception as error:  # mido raises many types for broken files (EOFError, OSError, ...)
        name = type(error).__name__
        raise _unreadable(f"{name}: {error}" if str(error) else f"{name} (the file ends early)") from error


def _too_long(bars: float, max_bars: int) -> MidiError:
    return MidiError(
        f"the melody is {math.ceil(bars)} bars long; at most {max_bars} are accompanied at once: "
        "split it into shorter pieces"
    )


def _unreadable(detail: str) -> MidiError:
    return MidiError(
        f"the file is not a readable MIDI file (a Standard MIDI File, .mid, is expected): {detail}"
    )


def _resolution(division: int) -> int:
    if division < 0:  # mido reads the header's 16 bits as signed: the top bit is SMPTE time
        raise MidiError(
            "the MIDI file counts time in SMPTE frames, not in beats: save it with a musical time "
            "base (ticks per quarter note), as every DAW does by default"
        )
    if not 0 < division <= MAX_TICKS_PER_QUARTER:
        raise MidiError(
            f"the MIDI file's time base is {division} ticks per quarter note: at least 1 is needed"
        )
    return division


def _parts(song: mido.MidiFile) -> list[tuple[Note, ...]]:
    """Every part (one channel of one track) with notes, drums left out, in track then channel order."""
    parts: list[tuple[Note, ...]] = []
    for track in song.tracks:
        by_channel: dict[int, list[Note]] = {}
        open_notes: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (channel, pitch) → [(start, vel)]
        tick = 0
        for message in track:
            tick += message.time
            kind = message.type
            if kind not in ("note_on", "note_off") or message.channel == DRUM_CHANNEL:
                continue
            key = (message.channel, message.note)
            if kind == "note_on" and message.velocity > 0:
                open_notes.setdefault(key, []).append((tick, message.velocity))
                continue
            started = open_notes.pop(key, [])
            earlier = [(start, velocity) for start, velocity in started if start < tick]
            if earlier:
                kept = [(start, velocity) for start, velocity in started if start == tick]
                if kept:
                    open_notes[key] = kept
            # else every open note began now: zero-length, dropped with the pop
            if message.note == 0:
                continue
            notes = by_channel.setdefault(message.channel, [])
            notes.extend(Note(start, tick, message.note, velocity) for start, velocity in earlier)
        for channel in sorted(by_channel):
            if by_channel[channel]:
                parts.append(tuple(sorted(by_channel[channel], key=lambda n: (n.start, n.pitch, n.end))))
    return parts


def _no_notes(song: mido.MidiFile) -> str:
    drums = any(
        message.type == "note_on" and message.velocity > 0 and message.channel == DRUM_CHANNEL
        for track in song.tracks
        for message in track
    )
    if drums:
        return (
            "the MIDI file has no melody notes outside the drum channel (channel 10; drum tracks "
            "are ignored): export the melody on another channel"
        )
    return (
        "the MIDI file has no notes (drum tracks are ignored): export the melody as a "
        "non-drum track with at least one note"
    )


def _conductor(song: mido.MidiFile) -> Conductor:
    """The tempo, time and key signature events at their absolute ticks, from every track, in
    time order (a track's own events keep their order; at one tick, the lower track first)."""
    events = []
    for index, track in enumerate(song.tracks):
        tick = 0
        for message in track:
            tick += message.time
            if message.type in CONDUCTOR_EVENTS:
                events.append((tick, index, message.copy(time=0)))
    events.sort(key=lambda event: event[:2])  # stable
    return tuple((tick, message) for tick, _, message in events)


def _tempo_bpm(conductor: Conductor) -> float:
    tempo = None
    for tick, message in conductor:
        if tick > 0:
            break
        if message.type == "set_tempo" and message.tempo > 0:
            tempo = message.tempo
    # MIDI stores whole microseconds per beat: 70 bpm reads back as 69.99998.
    return round(mido.tempo2bpm(tempo), 3) if tempo is not None else DEFAULT_TEMPO_BPM


def _bar_steps(numerator: int, denominator: int) -> float:
    return numerator * 4 * STEPS_PER_QUARTER / denominator


def _meter(conductor: Conductor, resolution: int, last_step: float) -> tuple[int, int, tuple[int, int]]:
    """(steps_per_bar, pickup_steps, (numerator, denominator)) from the time signatures."""
    changes = [(tick, message) for tick, message in conductor if message.type == "time_signature"]
    for _, message in changes:
        if message.numerator <= 0:
            raise MidiError(
                f"the MIDI file has a time signature of {message.numerator}/{message.denominator}, "
                "a bar without beats: save the melody in a meter such as 4/4, 3/4 or 6/8"
            )
    if not changes:
        numerator, denominator = DEFAULT_METER
        return int(_bar_steps(numerator, denominator)), 0, DEFAULT_METER
    starts = [step_of(tick, resolution) for tick, _ in changes]
    ends = [*starts[1:], max(last_step, starts[-1])]
    spans = [max(end, start) - start for start, end in zip(starts, ends, strict=True)]
    main_index = spans.index(max(spans))  # the first of the longest
    main = changes[main_index][1]
    bar = _bar_steps(main.numerator, main.denominator)
    if bar != int(bar):
        raise MidiError(
            f"the time signature {main.numerator}/{main.denominator} does not fill whole 16th notes; "
            "save the melody in a meter such as 4/4, 3/4 or 6/8"
        )
    if bar > MAX_BAR_QUARTERS * STEPS_PER_QUARTER:
        raise MidiError(
            f"the time signature {main.numerator}/{main.denominator} makes a bar of "
            f"{bar / STEPS_PER_QUARTER:g} quarter notes; at most {MAX_BAR_QUARTERS} (16/4) are read: "
            "save the melody in a meter such as 4/4, 3/4 or 6/8"
        )
    pickup = 0
    if len(changes) > 1 and starts[0] <= 0 and 0 < spans[0] < bar and main_index != 0:
        pickup = round(bar - spans[0])
    return int(bar), pickup, (main.numerator, main.denominator)


def _covers_a_step(reading: Reading, note: Note) -> bool:
    """Whether the note sounds on the grid (`gan.grid.render_line` keeps the steps whose start
    lies in [start, end), within the grid's length)."""
    begin = first_step(reading.step(note.start))
    return begin < min(first_step(reading.step(note.end)), reading.n_steps)
