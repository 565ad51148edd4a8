"""The shipped sample melodies and the checks on a user's MIDI upload.

Every sample is public domain and written here as a note list, so the api Lambda renders it
to MIDI with mido alone (no music21 in the Lambda asset). Four were taken once from music21's
bundled corpus (the source is named on each); Twinkle Twinkle and Ode to Joy are not in that
corpus and were written out by hand. Each is at least 8 bars long, so the container's windows
(several bars) always find a full melody. A tune that starts on an upbeat says so (`pickup`), and
its MIDI file spells it the way readers recognise an anacrusis: a short first bar with its own
time signature (`gan.midi.read_melody` then puts the bar lines where the tune's are).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import mido

from contracts import midi as midi_rules
from lambdas.common.errors import InvalidFieldError

# A note is (MIDI pitch, length in sixteenths); a pitch of None is a rest.
Note = tuple[int | None, int]

TICKS_PER_BEAT = 480
TICKS_PER_SIXTEENTH = TICKS_PER_BEAT // 4
VELOCITY = 90


@dataclass(frozen=True)
class Melody:
    name: str
    title: str
    source: str
    time_signature: tuple[int, int]
    bpm: int
    notes: tuple[Note, ...]
    pickup: int = 0  # sixteenths before the first full bar (an upbeat); the last bar is short by as many
    # The key, by ear and by the final note (a key-finding algorithm on a bare tune is not to be
    # trusted: music21's calls Yankee Doodle G major). GET /melodies shows it.
    key: str = ""

    @property
    def sixteenths(self) -> int:
        return sum(length for _, length in self.notes)

    @property
    def bars(self) -> float:
        numerator, denominator = self.time_signature
        return self.sixteenths / (numerator * 16 // denominator)


def _n(*pairs: Note) -> tuple[Note, ...]:
    return pairs


def _signature_of(sixteenths: int) -> tuple[int, int]:
    """A time signature `sixteenths` long, in the longest note value that divides it (6 -> 3/8)."""
    if sixteenths % 4 == 0:
        return sixteenths // 4, 4
    if sixteenths % 2 == 0:
        return sixteenths // 2, 8
    return sixteenths, 16


C4, D4, E4, F4, G4, A4 = 60, 62, 64, 65, 67, 69
G3 = 55
ODE_PHRASE = (E4, E4, F4, G4, G4, F4, E4, D4, C4, C4, D4, E4)

SAMPLES: dict[str, Melody] = {
    m.name: m
    for m in (
        Melody(
            "twinkle-twinkle",
            "Twinkle, Twinkle, Little Star",
            "traditional, written out by hand",
            (4, 4),
            100,
            _n(
                *[(p, 4) for p in (C4, C4, G4, G4, A4, A4)], (G4, 8),
                *[(p, 4) for p in (F4, F4, E4, E4, D4, D4)], (C4, 8),
                *[(p, 4) for p in (G4, G4, F4, F4, E4, E4)], (D4, 8),
                *[(p, 4) for p in (G4, G4, F4, F4, E4, E4)], (D4, 8),
                *[(p, 4) for p in (C4, C4, G4, G4, A4, A4)], (G4, 8),
                *[(p, 4) for p in (F4, F4, E4, E4, D4, D4)], (C4, 8),
            ),
            key="C major",
        ),
        Melody(
            "ode-to-joy",
            "Ode to Joy (Beethoven, Symphony No. 9)",
            "public domain, written out by hand",
            (4, 4),
            100,
            _n(
                *[(p, 4) for p in ODE_PHRASE], (E4, 6), (D4, 2), (D4, 8),
                *[(p, 4) for p in ODE_PHRASE], (D4, 6), (C4, 2), (C4, 8),
                (D4, 4), (D4, 4), (E4, 4), (C4, 4),
                (D4, 4), (E4, 2), (F4, 2), (E4, 4), (C4, 4),
                (D4, 4), (E4, 2), (F4, 2), (E4, 4), (D4, 4),
                (C4, 4), (D4, 4), (G3, 8),
                *[(p, 4) for p in ODE_PHRASE], (D4, 6), (C4, 2), (C4, 8),
            ),
            key="C major",
        ),
        Melody(
            "stille-nacht",
            "Stille Nacht, heilige Nacht",
            "music21 corpus essenFolksong/boehme20.abc #270",
            (6, 8),
            70,
            _n(
                (55, 3), (57, 1), (55, 2), (52, 6), (55, 3), (57, 1), (55, 2), (52, 6),
                (62, 4), (62, 2), (59, 6), (60, 4), (60, 2), (55, 6),
                (57, 4), (57, 2), (60, 3), (59, 1), (57, 2), (55, 3), (57, 1), (55, 2), (52, 6),
                (57, 4), (57, 2), (60, 3), (59, 1), (57, 2), (55, 3), (57, 1), (55, 2), (52, 6),
                (62, 4), (62, 2), (65, 3), (62, 1), (59, 2), (60, 6), (64, 4), (None, 2),
                (60, 2), (55, 2), (52, 2), (55, 3), (53, 1), (50, 2), (48, 10), (None, 2),
            ),
            key="C major",
        ),
        Melody(
            "yankee-doodle",
            "Yankee Doodle",
            "music21 corpus miscFolk/americanfifeopus.abc #30",
            (2, 4),
            110,
            _n(
                (74, 4), (76, 2), (78, 2), (74, 2), (78, 2), (76, 2), (73, 2),
                (74, 4), (76, 2), (78, 2), (74, 4), (73, 4),
                (74, 4), (76, 2), (78, 2), (79, 2), (78, 2), (76, 2), (74, 2),
                (73, 2), (69, 2), (71, 2), (73, 2), (74, 4), (74, 4),
                (74, 4), (71, 2), (67, 2), (71, 2), (74, 2), (72, 4),
                (69, 3), (71, 1), (69, 2), (67, 2), (66, 2), (67, 2), (69, 4),
                (74, 4), (71, 2), (67, 2), (71, 2), (74, 2), (72, 4),
                (69, 2), (71, 2), (73, 2), (69, 2), (74, 4), (74, 4),
            ),
            key="D major",
        ),
        Melody(
            "londonderry-air",
            "Londonderry Air",
            # The source's bars 2, 11 and 15 hold 7 eighths in 4/4: each rest there is a quarter
            # here, so every later bar line falls where the tune's does.
            "music21 corpus oneills1850/0101-0200.abc #188 (rests of bars 2, 11, 15 made whole)",
            (4, 4),
            72,
            _n(
                (66, 2), (67, 2), (69, 2), (71, 6), (69, 2), (71, 2), (76, 2), (74, 2), (71, 2),
                (69, 2), (67, 2), (64, 2), (None, 4), (67, 2), (71, 2), (76, 2), (74, 6), (76, 2),
                (74, 2), (71, 2), (67, 2), (71, 2), (69, 8), (None, 2),
                (66, 2), (67, 2), (69, 2), (71, 6), (69, 2), (71, 2), (76, 2), (74, 2), (71, 2),
                (69, 2), (67, 2), (64, 2), (62, 2), (64, 2), (66, 2), (67, 2), (69, 2), (71, 6),
                (72, 2), (71, 2), (69, 2), (67, 2), (66, 2), (64, 8), (None, 2),
                (74, 2), (76, 2), (78, 2), (79, 6), (78, 2), (78, 2), (76, 2), (74, 2), (71, 2),
                (74, 2), (71, 2), (67, 2), (None, 4), (74, 2), (76, 2), (78, 2), (79, 6), (78, 2),
                (78, 2), (76, 2), (74, 2), (71, 2), (76, 8), (None, 2),
                (74, 2), (74, 2), (74, 2), (83, 6), (81, 2), (81, 2), (79, 2), (76, 2), (79, 2),
                (74, 2), (71, 2), (67, 2), (None, 4), (66, 2), (67, 2), (69, 2), (71, 2), (76, 2),
                (74, 2), (71, 2), (69, 2), (67, 2), (66, 2), (67, 2), (64, 8), (None, 2),
            ),
            pickup=6,  # "Oh Dan-ny": three eighths before the first bar line
            key="E minor",
        ),
        Melody(
            "ein-feste-burg",
            "Ein feste Burg ist unser Gott",
            "music21 corpus essenFolksong/erk30.abc #626",
            (4, 4),
            90,
            _n(
                (72, 4), (72, 4), (72, 4), (67, 4), (71, 4), (72, 2), (71, 2), (69, 4), (67, 4),
                (72, 4), (71, 4), (69, 4), (67, 4), (69, 4), (65, 2), (64, 2), (62, 4), (60, 4),
                (72, 4), (72, 4), (72, 4), (67, 4), (71, 4), (72, 2), (71, 2), (69, 4), (67, 4),
                (72, 4), (71, 4), (69, 4), (67, 4), (69, 4), (65, 2), (64, 2), (62, 4), (60, 4),
                (60, 4), (67, 4), (69, 4), (67, 4), (66, 4), (67, 12), (60, 4), (67, 8), (69, 4),
                (71, 4), (72, 12), (71, 4), (72, 4), (71, 4), (69, 8), (67, 12), (69, 4), (69, 4),
                (67, 4), (69, 4), (65, 4), (64, 12), (72, 4), (71, 4), (69, 4), (67, 4), (69, 4),
                (65, 2), (64, 2), (62, 4), (60, 4),
            ),
            pickup=4,  # "Ein": one quarter before the first bar line
            key="C major",
        ),
    )
}

DEFAULT_SAMPLE = "twinkle-twinkle"


def render(melody: Melody) -> bytes:
    """A type-1 MIDI file: a tempo track (a pickup is a short first bar), then one piano track
    holding the melody."""
    numerator, denominator = melody.time_signature
    meta = mido.MidiTrack(
        [
            mido.MetaMessage("track_name", name=melody.title, time=0),
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(melody.bpm), time=0),
        ]
    )
    main_meter_at = 0
    if melody.pickup:
        pickup_numerator, pickup_denominator = _signature_of(melody.pickup)
        meta.append(mido.MetaMessage("time_signature", numerator=pickup_numerator,
                                     denominator=pickup_denominator, time=0))
        main_meter_at = melody.pickup * TICKS_PER_SIXTEENTH
    meta.append(mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator,
                                 time=main_meter_at))
    track = mido.MidiTrack(
        [mido.MetaMessage("track_name", name="melody", time=0), mido.Message("program_change", program=0)]
    )
    rest = 0  # ticks of silence before the next note_on (MIDI times are deltas)
    for pitch, length in melody.notes:
        ticks = length * TICKS_PER_SIXTEENTH
        if pitch is None:
            rest += ticks
            continue
        track.append(mido.Message("note_on", note=pitch, velocity=VELOCITY, time=rest))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=ticks))
        rest = 0
    track.append(mido.MetaMessage("end_of_track", time=rest))
    meta.append(mido.MetaMessage("end_of_track", time=0))
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT, tracks=[meta, track])
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def catalogue() -> list[dict[str, object]]:
    """GET /melodies: each sample as a caller picks one. Bars are counted as a composition
    counts them: a pickup is a bar of its own."""
    listed: list[dict[str, object]] = []
    for melody in SAMPLES.values():
        numerator, denominator = melody.time_signature
        bar = numerator * 16 // denominator
        padded = melody.sixteenths + ((bar - melody.pickup) % bar if melody.pickup else 0)
        listed.append({"name": melody.name, "title": melody.title, "bars": math.ceil(padded / bar),
                       "meter": f"{numerator}/{denominator}", "key": melody.key, "tempo_bpm": melody.bpm})
    return listed


UPLOAD_FIELD = "melody.midi_base64"


def count_notes(data: bytes) -> int:
    """Notes in the melody (the first part with notes, drums left out), read by the one set of
    rules the training and the compose function read it by (`contracts.midi`).

    Raises InvalidFieldError naming `melody.midi_base64` when the file breaks one of those rules
    (not a MIDI file, no melody notes, SMPTE time, too long, ...), so a bad upload is a 400 and
    never reaches training.
    """
    try:
        return len(midi_rules.read_melody(data).melody)
    except midi_rules.MidiError as e:
        raise InvalidFieldError(UPLOAD_FIELD, str(e)) from e
