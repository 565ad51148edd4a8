"""The temperature knob: 0 is the likeliest line exactly as decoded before it existed, the same
seed and temperature give the same voices (and MIDI bytes), different seeds give different
voices, a bad temperature is a ValueError naming it, and the melody is never touched. The
generator is small and untrained: these are properties of the decoding, not of the music
(bench/bench_variety.py measures the music)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from contracts import compositions
from gan import generate, midi
from gan.encoding import avoid_parallels, change_costs, decode, perturb, smooth_lines
from gan.generate import accompaniment, accompany, harmonise
from gan.model import Generator, ModelConfig

SMALL = ModelConfig(generator_channels=(16, 16, 16), noise_channels=4, critic_channels=(8, 8, 8, 8))
STEPS_PER_BAR = 16
BAD_TEMPERATURES = [-0.01, compositions.TEMPERATURE_MAX + 0.01, math.nan, math.inf, "0.3", None, True]


@pytest.fixture(scope="module")
def generator() -> Generator:
    torch.manual_seed(0)
    return Generator(SMALL).eval()


@pytest.fixture(scope="module")
def tune() -> tuple[np.ndarray, np.ndarray]:
    """Eight bars of a stepwise tune in G, a note every quarter or half."""
    rng = np.random.default_rng(7)
    pitches, onsets = [], []
    for _ in range(24):
        length = int(rng.choice([4, 8]))
        pitches += [int(rng.choice([67, 69, 71, 72, 74, 76, 78, 79]))] * length
        onsets += [True] + [False] * (length - 1)
    steps = 8 * STEPS_PER_BAR
    return np.array(pitches[:steps], dtype=np.uint8), np.array(onsets[:steps], dtype=bool)


def melody_file(tune: tuple[np.ndarray, np.ndarray]) -> bytes:
    pitches, onsets = tune
    return midi.write_chorale(pitches[None], onsets[None], tempo_bpm=90, steps_per_bar=STEPS_PER_BAR)


@pytest.fixture(scope="module")
def logits(generator, tune) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    pitches, onsets = tune
    from gan.encoding import condition

    cond = condition(pitches.astype(int), onsets, STEPS_PER_BAR, SMALL)
    noise = torch.randn(generator.noise_shape(1, len(pitches)), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        pitch_logits, onset_logits = generator(cond[None], noise)
    return pitch_logits[0], onset_logits[0], pitches.astype(int)


def test_the_default_temperature_lies_inside_its_limits():
    assert compositions.TEMPERATURE_MIN == 0.0
    assert compositions.TEMPERATURE_MIN < compositions.DEFAULT_TEMPERATURE <= compositions.TEMPERATURE_MAX


# --- temperature 0: the likeliest line, as before -----------------------------------------------


def test_temperature_zero_is_the_likeliest_line_decoded_as_before(logits):
    pitch_logits, onset_logits, melody = logits
    # the decode of before the knob, from its parts: Viterbi per voice, then the parallel repair
    log_probs = torch.log_softmax(pitch_logits.float(), 1).numpy()
    classes = smooth_lines(log_probs, change_costs(log_probs.shape[-1], STEPS_PER_BAR))
    classes = avoid_parallels(log_probs, classes, melody, SMALL)
    expected = np.where(classes > 0, classes + SMALL.low_pitch - 1, 0).astype(np.uint8)

    default, default_onsets = decode(pitch_logits, onset_logits, SMALL, melody, STEPS_PER_BAR)
    np.testing.assert_array_equal(default, expected)
    for seed in (0, 1, 12345):  # at 0 the decoder's seed is never looked at
        pitches, onsets = decode(pitch_logits, onset_logits, SMALL, melody, STEPS_PER_BAR, 0, 0.0, seed)
        np.testing.assert_array_equal(pitches, expected)
        np.testing.assert_array_equal(onsets, default_onsets)
    assert perturb(log_probs, 0.0, 3) is log_probs


def test_temperature_zero_through_harmonise_ignores_nothing_but_the_decoder_noise(generator, tune):
    pitches, onsets = tune
    first = harmonise(generator, pitches, onsets, STEPS_PER_BAR, seed=4, temperature=0)
    again = harmonise(generator, pitches, onsets, STEPS_PER_BAR, seed=4, temperature=0.0)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


# --- repeatable, and varied -----------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.0, compositions.DEFAULT_TEMPERATURE, compositions.TEMPERATURE_MAX])
def test_the_same_seed_and_temperature_give_the_same_voices_and_bytes(generator, tune, temperature):
    pitches, onsets = tune
    first = harmonise(generator, pitches, onsets, STEPS_PER_BAR, seed=9, temperature=temperature)
    again = harmonise(generator, pitches, onsets, STEPS_PER_BAR, seed=9, temperature=temperature)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    data = melody_file(tune)
    assert accompany(generator, data, 9, "strings", temperature) == accompany(
        generator, data, 9, "strings", temperature
    )


def test_the_default_temperature_is_what_every_entry_point_uses(generator, tune):
    pitches, onsets = tune
    data = melody_file(tune)
    default = compositions.DEFAULT_TEMPERATURE
    for a, b in zip(
        harmonise(generator, pitches, onsets, STEPS_PER_BAR, seed=2),
        harmonise(generator, pitches, onsets, STEPS_PER_BAR, seed=2, temperature=default),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    assert accompany(generator, data, 2) == accompany(generator, data, 2, None, default)
    assert accompaniment(generator, data, 2).midi == accompany(generator, data, 2, None, default)


def test_different_seeds_give_different_voices_at_the_default_temperature(generator, tune, logits):
    pitches, onsets = tune
    default = compositions.DEFAULT_TEMPERATURE
    voices = [
        harmonise(generator, pitches, onsets, STEPS_PER_BAR, seed=s, temperature=default)[0][1:]
        for s in range(3)
    ]
    assert not np.array_equal(voices[0], voices[1])
    assert not np.array_equal(voices[1], voices[2])
    # ... from the decoder's noise alone, the model's logits held fixed
    pitch_logits, onset_logits, melody = logits
    decoded = [
        decode(pitch_logits, onset_logits, SMALL, melody, STEPS_PER_BAR, 0, default, seed)[0]
        for seed in (0, 1)
    ]
    assert not np.array_equal(*decoded)
    data = melody_file(tune)
    assert accompany(generator, data, 0) != accompany(generator, data, 1)


def test_a_higher_temperature_strays_further_from_the_likeliest_line(logits):
    pitch_logits, onset_logits, melody = logits
    likeliest, _ = decode(pitch_logits, onset_logits, SMALL, melody, STEPS_PER_BAR)
    changed = [
        np.mean(decode(pitch_logits, onset_logits, SMALL, melody, STEPS_PER_BAR, 0, t, seed)[0] != likeliest)
        for t in (0.05, compositions.TEMPERATURE_MAX)
        for seed in range(3)
    ]
    assert np.mean(changed[:3]) < np.mean(changed[3:])


# --- bad temperatures ---------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", BAD_TEMPERATURES, ids=repr)
def test_a_temperature_out_of_range_is_a_value_error_naming_it(generator, tune, temperature):
    pitches, onsets = tune
    with pytest.raises(ValueError, match="temperature"):
        harmonise(generator, pitches, onsets, STEPS_PER_BAR, temperature=temperature)
    # before any work: the file is not even read
    with pytest.raises(ValueError, match="temperature"):
        accompaniment(generator, b"not even MIDI", 0, None, temperature)
    with pytest.raises(ValueError, match="temperature"):
        accompany(generator, b"not even MIDI", temperature=temperature)


@pytest.mark.parametrize("temperature", [compositions.TEMPERATURE_MIN, compositions.TEMPERATURE_MAX, 1])
def test_the_limits_themselves_are_allowed(generator, tune, temperature):
    pitches, onsets = tune
    harmonise(generator, pitches, onsets, STEPS_PER_BAR, temperature=temperature)


# --- the melody stays the melody ----------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.0, compositions.DEFAULT_TEMPERATURE, compositions.TEMPERATURE_MAX])
def test_the_melody_line_is_untouched(generator, tune, temperature):
    pitches, onsets = tune
    out_pitches, out_onsets = harmonise(
        generator, pitches, onsets, STEPS_PER_BAR, seed=5, temperature=temperature
    )
    np.testing.assert_array_equal(out_pitches[0], pitches)
    np.testing.assert_array_equal(out_onsets[0], onsets)
    piece = accompaniment(generator, melody_file(tune), 5, None, temperature)
    np.testing.assert_array_equal(piece.pitches[0], pitches)
    melody_track = midi.read_melody(piece.midi)
    np.testing.assert_array_equal(melody_track.pitches, pitches)
    np.testing.assert_array_equal(melody_track.onsets, onsets)


# --- the command ------------------------------------------------------------------------------


def test_the_command_takes_a_temperature(generator, tune, tmp_path):
    model = tmp_path / "model.pt"
    torch.save({"generator": generator.state_dict(), "config": SMALL.to_dict()}, model)
    melody = tmp_path / "melody.mid"
    melody.write_bytes(melody_file(tune))
    loaded = generate.load_generator(model)
    for flags, temperature in ([], compositions.DEFAULT_TEMPERATURE), (["--temperature", "0"], 0.0):
        out = tmp_path / "out.mid"
        assert generate.main([str(model), str(melody), str(out), "--seed", "3", *flags]) == 0
        assert out.read_bytes() == accompany(loaded, melody.read_bytes(), 3, None, temperature)
    with pytest.raises(SystemExit) as exit_info:
        generate.main([str(model), str(melody), str(tmp_path / "x.mid"), "--temperature", "5"])
    assert exit_info.value.code == 2
