"""The request model's defaults and the shipped melodies, checked against the training
package that consumes them (what the api stores is what the container reads)."""

from __future__ import annotations

import io
from dataclasses import asdict
from typing import Literal

import mido
import pytest
from pydantic import ValidationError

from contracts.hyperparameters import HYPERPARAMETERS, Hyperparameter
from lambdas.common import melodies
from lambdas.common.errors import InvalidFieldError
from lambdas.common.models import Hyperparameters


def test_the_api_defaults_are_the_training_packages_defaults() -> None:
    from gan.train import Hyperparameters as TrainingHyperparameters

    assert Hyperparameters().model_dump() == asdict(TrainingHyperparameters())


def test_hyperparameters_reach_the_container_as_strings_it_parses_back() -> None:
    from gan.train import Hyperparameters as TrainingHyperparameters

    chosen = Hyperparameters(epochs=3, learning_rate=0.0002, update_ratio=2, batch_size=16, seed=2**63)

    assert asdict(TrainingHyperparameters.parse(chosen.as_sagemaker())) == chosen.model_dump()


def test_the_request_model_has_the_contracts_hyperparameters() -> None:
    fields = Hyperparameters.model_fields

    assert list(fields) == [spec.name for spec in HYPERPARAMETERS]
    for spec in HYPERPARAMETERS:
        field = fields[spec.name]
        kind = Literal[spec.choices] if spec.choices else spec.kind
        assert (field.annotation, field.default, field.description) == (kind, spec.default, spec.help)


@pytest.mark.parametrize("spec", [s for s in HYPERPARAMETERS if s.choices], ids=lambda spec: spec.name)
def test_a_choice_takes_its_names_only_and_the_refusal_lists_them(spec: Hyperparameter) -> None:
    for choice in spec.choices:
        assert getattr(Hyperparameters.model_validate({spec.name: choice}), spec.name) == choice
    with pytest.raises(ValidationError, match=" or ".join(repr(c) for c in spec.choices)):
        Hyperparameters.model_validate({spec.name: "huge"})


@pytest.mark.parametrize("spec", [s for s in HYPERPARAMETERS if not s.choices], ids=lambda spec: spec.name)
def test_the_request_model_accepts_and_refuses_at_the_contracts_bounds(spec: Hyperparameter) -> None:
    step = 1 if spec.kind is int else 1e-9
    inside = [spec.minimum + step, spec.maximum - step]
    outside = [spec.minimum - step, spec.maximum + step]
    (inside if not spec.exclusive else outside).extend([spec.minimum, spec.maximum])

    for value in inside:
        Hyperparameters.model_validate_json(f'{{"{spec.name}": {value!r}}}')
    for value in outside:
        with pytest.raises(ValidationError):
            Hyperparameters.model_validate_json(f'{{"{spec.name}": {value!r}}}')


@pytest.mark.parametrize("name", sorted(melodies.SAMPLES))
def test_each_sample_is_a_melody_of_at_least_eight_bars_the_container_reads_note_for_note(name: str) -> None:
    from gan.midi import read_melody

    sample = melodies.SAMPLES[name]
    midi = melodies.render(sample)

    melody = read_melody(midi)
    pitches = [int(p) for p, onset in zip(melody.pitches, melody.onsets, strict=True) if onset]
    assert pitches == [p for p, _ in sample.notes if p is not None]
    assert melody.time_signature == sample.time_signature
    assert melody.steps // melody.steps_per_bar >= 8
    assert sample.bars >= 8
    assert melodies.count_notes(midi) == len(pitches)


def test_a_sample_keeps_its_rhythm_in_the_midi_file() -> None:
    sample = melodies.SAMPLES["stille-nacht"]
    midi = mido.MidiFile(file=io.BytesIO(melodies.render(sample)))

    ticks, onsets = 0, []
    for message in midi.tracks[1]:
        ticks += message.time
        if message.type == "note_on":
            onsets.append(ticks // melodies.TICKS_PER_SIXTEENTH)
    expected, position = [], 0
    for pitch, length in sample.notes:
        if pitch is not None:
            expected.append(position)
        position += length
    assert onsets == expected


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "not a readable MIDI file"),
        (b"MThd\x00\x00", "not a readable MIDI file"),
        (b"\x00" * 64, "not a"),
    ],
)
def test_an_upload_that_is_not_midi_names_the_field(data: bytes, problem: str) -> None:
    with pytest.raises(InvalidFieldError) as error:
        melodies.count_notes(data)

    assert error.value.field == "melody.midi_base64"
    assert problem in error.value.message
