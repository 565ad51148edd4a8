"""The instruments contract: presets and the explicit per-voice form resolve to four General
MIDI voices, and every bad value is a ValueError that names its field."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

import contracts
from contracts import instruments
from contracts.instruments import PRESETS, Voice, from_text, resolve


def test_the_default_is_todays_choir():
    assert resolve() == resolve(None) == resolve("choir") == instruments.DEFAULT
    assert resolve("choir") == tuple(Voice(52, name) for name in ("Soprano", "Alto", "Tenor", "Bass"))


def test_piano_is_deepcomposers_four_acoustic_grand_pianos():
    assert [v.program for v in resolve("piano")] == [0, 0, 0, 0]


@pytest.mark.parametrize("name", ["piano", "choir", "strings", "organ"])
def test_the_required_presets_exist(name):
    assert name in PRESETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_four_valid_voices_that_resolve_to_themselves(name):
    voices = PRESETS[name]
    assert len(voices) == 4
    assert resolve(list(voices)) == voices  # Voice objects are accepted as they are
    assert resolve(instruments.as_json(voices)) == voices
    assert from_text(json.dumps(instruments.as_json(voices))) == voices == from_text(f" {name} ")


def test_the_explicit_form_takes_objects_and_program_numbers_and_defaults_names_to_parts():
    voices = resolve(
        [{"program": 73, "name": "Flute"}, 71, {"program": 70}, {"program": 127, "name": "Gunshot"}]
    )
    assert voices == (Voice(73, "Flute"), Voice(71, "Alto"), Voice(70, "Tenor"), Voice(127, "Gunshot"))
    assert resolve((0, 0, 0, 0)) == tuple(Voice(0, part) for part in instruments.PARTS)


@pytest.mark.parametrize(
    ("value", "field", "says"),
    [
        ("banjo", "instruments", "unknown preset 'banjo'"),
        ("Piano", "instruments", "unknown preset"),
        ("", "instruments", "unknown preset"),
        (7, "instruments", "got int"),
        ({"program": 0}, "instruments", "got dict"),
        (b"piano", "instruments", "got bytes"),
        ([0, 0, 0], "instruments", "3 voices given, 4 are needed"),
        ([0] * 5, "instruments", "5 voices given"),
        ([], "instruments", "0 voices given"),
        ([0, 0, 128, 0], "instruments[2]", "128 is outside 0-127"),
        ([0, 0, -1, 0], "instruments[2]", "-1 is outside 0-127"),
        ([0, 0, 0, {"program": 128}], "instruments[3].program", "outside 0-127"),
        ([0, {"program": 1.5}, 0, 0], "instruments[1].program", "not a whole number"),
        ([0, {"program": "40"}, 0, 0], "instruments[1].program", "not a whole number"),
        ([True, 0, 0, 0], "instruments[0]", "not a whole number"),
        ([0, {"name": "Viola"}, 0, 0], "instruments[1].program", "is missing"),
        ([0, {"program": 41, "name": ""}, 0, 0], "instruments[1].name", "is empty"),
        ([0, {"program": 41, "name": "   "}, 0, 0], "instruments[1].name", "is empty"),
        ([0, {"program": 41, "name": "V" * 65}, 0, 0], "instruments[1].name", "65 characters long"),
        ([0, {"program": 41, "name": 3}, 0, 0], "instruments[1].name", "not a string"),
        ([0, {"program": 41, "name": "Bratsche\n"}, 0, 0], "instruments[1].name", "printable ASCII"),
        ([0, {"program": 41, "name": "Alt\u00f6"}, 0, 0], "instruments[1].name", "printable ASCII"),
        ([0, {"program": 41, "colour": "red"}, 0, 0], "instruments[1].colour", "not a voice's field"),
    ],
)
def test_a_bad_value_names_its_field(value, field, says):
    with pytest.raises(ValueError) as error:
        resolve(value)
    message = str(error.value)
    assert message.startswith(f"{field}: ") and says in message


def test_the_longest_allowed_name_is_accepted():
    assert resolve([0, {"program": 41, "name": "V" * 64}, 0, 0])[1].name == "V" * 64


def test_an_unknown_preset_lists_the_presets():
    with pytest.raises(ValueError) as error:
        resolve("banjo")
    assert all(name in str(error.value) for name in PRESETS)


def test_text_that_is_not_json_names_the_field():
    with pytest.raises(ValueError, match=r"^instruments: not valid JSON"):
        from_text('[{"program": 1,')
    with pytest.raises(ValueError, match=r"^instruments\[0\]: 200 is outside"):
        from_text("[200, 0, 0, 0]")


def test_the_module_imports_only_the_standard_library_and_contracts():
    # the API's Lambda and the training container both import it, so nothing else may come in
    tree = ast.parse(Path(instruments.__file__).read_text())
    imported = {
        (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= set(sys.stdlib_module_names) | {contracts.__name__, "__future__"}
