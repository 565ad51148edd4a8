"""The instruments of a composition: a General MIDI program and a track name for each voice.

A composition has four voices, the melody (soprano) first, then alto, tenor and bass. A request
names a preset (`"piano"`, DeepComposer's sound) or gives the four voices itself:

    "strings"
    [{"program": 73, "name": "Flute"}, 71, {"program": 70}, {"program": 58, "name": "Tuba"}]

An entry is a program number (0-127, 0-based as MIDI files store it: 0 is Acoustic Grand Piano)
or an object with `program` and an optional `name`; a missing name is the voice's part name
(`Soprano`, `Alto`, `Tenor`, `Bass`). `resolve` turns either form into four `Voice`s and is the
one check: the API's request model (lambdas) validates with it, so a bad value is a 400 naming
the field, and the training container and `gan.generate` call it again on what they are given.
Its ValueError's message starts with the field's path (`instruments`, `instruments[2].program`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FIELD = "instruments"
VOICES = 4
PARTS = ("Soprano", "Alto", "Tenor", "Bass")  # the default track names, melody first
PROGRAMS = range(128)  # General MIDI programs, 0-based
NAME_MAX = 64  # characters; DAWs show a few dozen


@dataclass(frozen=True)
class Voice:
    program: int  # General MIDI program, 0-127 (0-based)
    name: str  # the track name a DAW shows

    def as_json(self) -> dict[str, Any]:
        return {"program": self.program, "name": self.name}


def _preset(programs: Sequence[int], names: Sequence[str]) -> tuple[Voice, ...]:
    return tuple(Voice(p, n) for p, n in zip(programs, names, strict=True))


PRESETS: dict[str, tuple[Voice, ...]] = {
    # General MIDI "Choir Aahs" (program 53, 0-based 52): a chorale is sung. What the
    # container wrote before instruments could be chosen, so it is the default.
    "choir": _preset([52] * 4, PARTS),
    # DeepComposer's output: every track Acoustic Grand Piano.
    "piano": _preset([0] * 4, [f"Piano ({part.lower()})" for part in PARTS]),
    # A string quartet. The alto's lowest notes (F3, F#3) lie under a violin's G3; a General
    # MIDI synthesiser plays them all the same.
    "strings": _preset([40, 40, 41, 42], ["Violin I", "Violin II", "Viola", "Cello"]),
    # Church Organ on every voice, as a chorale is accompanied in church.
    "organ": _preset([19] * 4, [f"Organ ({part.lower()})" for part in PARTS]),
    "woodwinds": _preset([73, 68, 71, 70], ["Flute", "Oboe", "Clarinet", "Bassoon"]),
    "brass": _preset([56, 60, 57, 58], ["Trumpet", "French Horn", "Trombone", "Tuba"]),
}
DEFAULT_PRESET = "choir"
DEFAULT: tuple[Voice, ...] = PRESETS[DEFAULT_PRESET]


def _fail(path: str, problem: str) -> ValueError:
    return ValueError(f"{path}: {problem}")


def _usage() -> str:
    return (
        f"one of {', '.join(sorted(PRESETS))}, or {VOICES} voices (melody, alto, tenor, bass), "
        'each a program 0-127 or {"program": 0-127, "name": "..."}'
    )


def _program(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, f"{value!r} is not a whole number (a General MIDI program, 0-127)")
    if value not in PROGRAMS:
        raise _fail(path, f"{value} is outside 0-127 (General MIDI programs are 0-based)")
    return value


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"{value!r} is not a string")
    if not value.strip():
        raise _fail(path, "is empty")
    if len(value) > NAME_MAX:
        raise _fail(path, f"is {len(value)} characters long, at most {NAME_MAX} are allowed")
    # MIDI stores a track name as bytes with no agreed encoding: ASCII reads the same in every DAW.
    if not (value.isascii() and value.isprintable()):
        raise _fail(path, f"{value!r} has characters other than printable ASCII")
    return value


def _voice(value: Any, index: int) -> Voice:
    path = f"{FIELD}[{index}]"
    if isinstance(value, Voice):
        value = value.as_json()
    if isinstance(value, Mapping):
        unknown = sorted(str(k) for k in value if k not in ("program", "name"))
        if unknown:
            raise _fail(f"{path}.{unknown[0]}", "is not a voice's field (program, name)")
        if "program" not in value:
            raise _fail(f"{path}.program", "is missing")
        return Voice(
            _program(value["program"], f"{path}.program"),
            _name(value.get("name", PARTS[index]), f"{path}.name"),
        )
    return Voice(_program(value, path), PARTS[index])


def resolve(value: Any = None) -> tuple[Voice, ...]:
    """A preset name, four voices (program numbers, `{"program", "name"}` objects or `Voice`s)
    or None (the default, `choir`) → four `Voice`s, melody first.

    Raises ValueError whose message starts with the field's path: `instruments` for an unknown
    preset, a wrong type or a wrong number of voices; `instruments[i].program` or
    `instruments[i].name` for a program outside 0-127 or an empty, over-long or non-ASCII name."""
    if value is None:
        return DEFAULT
    if isinstance(value, str):
        if value not in PRESETS:
            raise _fail(FIELD, f"unknown preset {value!r}: give {_usage()}")
        return PRESETS[value]
    if isinstance(value, Mapping | bytes | bytearray) or not isinstance(value, Sequence):
        raise _fail(FIELD, f"expected {_usage()}; got {type(value).__name__}")
    if len(value) != VOICES:
        raise _fail(FIELD, f"{len(value)} voices given, {VOICES} are needed (melody, alto, tenor, bass)")
    return tuple(_voice(v, i) for i, v in enumerate(value))


def from_text(text: str) -> tuple[Voice, ...]:
    """A command-line or environment value: a preset name, or the voices as JSON (`[...]`)."""
    stripped = text.strip()
    if not stripped.startswith("["):
        return resolve(stripped)
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as e:
        raise _fail(FIELD, f"not valid JSON ({e})") from e
    return resolve(value)


def as_json(voices: Sequence[Voice]) -> list[dict[str, Any]]:
    """Resolved voices in the explicit form, e.g. to store or echo in a response."""
    return [v.as_json() for v in voices]
