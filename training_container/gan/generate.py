"""Accompany a melody with a trained generator: a function and a command.

    python -m gan.generate MODEL.pt MELODY.mid OUT.mid [--seed 0] [--temperature 0.3]
        [--instruments strings]

The generator is fully convolutional, so it runs once over the whole melody, whatever its
length (the lab cut every melody to its first two bars). The same model, melody, seed,
temperature and instruments give the same MIDI, byte for byte: the generator's noise comes from
a torch generator seeded with `seed`, and the decoder's (gan.encoding.decode: a Viterbi path per
voice, through log-probabilities perturbed by `temperature` x Gumbel noise from a numpy
generator seeded with `seed`) is as repeatable. Temperature 0 is the likeliest line; the
default (contracts.compositions.DEFAULT_TEMPERATURE) gives each seed its own voices. The model
hears the melody on the 16th-note grid; the file gives it back exactly as it came
(gan.midi.write_accompaniment).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from contracts import compositions
from contracts import instruments as instrument_presets
from gan.encoding import condition, decode
from gan.model import Generator, ModelConfig

SOPRANO_RANGE = (57, 81)  # Bach's soprano lines, over the whole corpus


def load_generator(path: Path | str) -> Generator:
    """A model file written by gan.train (or a training checkpoint) → generator in eval mode."""
    saved = torch.load(path, map_location="cpu", weights_only=False)
    generator = Generator(ModelConfig.from_dict(saved["config"]))
    generator.load_state_dict(saved["generator"])
    return generator.eval()


def octave_shift(melody: np.ndarray) -> int:
    """Whole octaves that move the melody's notes into a soprano's range as far as possible (a
    tune written an octave high or low still gets chorale voices under it); 0 on a tie."""
    sounding = melody[melody > 0].astype(int)
    if sounding.size == 0:
        return 0
    outside = {
        k: int(((sounding + k < SOPRANO_RANGE[0]) | (sounding + k > SOPRANO_RANGE[1])).sum())
        for k in range(-48, 49, 12)
    }
    return min(outside, key=lambda k: (outside[k], abs(k)))


def check_temperature(temperature: object) -> float:
    """The temperature as a float, or ValueError naming `temperature` (not a number, not finite,
    or outside contracts.compositions' TEMPERATURE_MIN..TEMPERATURE_MAX)."""
    low, high = compositions.TEMPERATURE_MIN, compositions.TEMPERATURE_MAX
    if isinstance(temperature, bool) or not isinstance(temperature, int | float | np.integer | np.floating):
        raise ValueError(f"temperature must be a number from {low} to {high}; got {temperature!r}")
    value = float(temperature)
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"temperature must be from {low} to {high}; got {temperature!r}")
    return value


@torch.no_grad()
def harmonise(
    generator: Generator,
    melody: np.ndarray,
    onsets: np.ndarray,
    steps_per_bar: int,
    seed: int = 0,
    first_bar_start: int = 0,
    temperature: float = compositions.DEFAULT_TEMPERATURE,
) -> tuple[np.ndarray, np.ndarray]:
    """A melody line (MIDI pitches [T], 0 = rest; onsets [T]) → four voices: pitches uint8
    [4, T] and onsets bool [4, T], the melody unchanged on top. `seed` seeds the generator's
    noise and the decoder's; `temperature` (0 to contracts.compositions.TEMPERATURE_MAX) is how
    far the voices may stray from the likeliest line (gan.encoding.perturb), 0 = the likeliest."""
    temperature = check_temperature(temperature)
    config = generator.config
    steps = len(melody)
    shift = octave_shift(melody)
    moved = np.where(melody > 0, melody.astype(int) + shift, 0)
    padded = -(-max(steps, 1) // config.downsampling) * config.downsampling
    cond = condition(
        np.pad(moved, (0, padded - steps)),
        np.pad(onsets, (0, padded - steps)),
        steps_per_bar,
        config,
        first_bar_start,
    )
    noise = torch.randn(generator.noise_shape(1, padded), generator=torch.Generator().manual_seed(seed))
    # Wherever the generator is (a GPU during a training's validation): the noise is drawn on the
    # CPU, so a seed gives the same noise on any device; the decoder reads the logits there.
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    pitch_logits, onset_logits = generator(cond[None].to(device), noise.to(device))
    pitch_logits, onset_logits = pitch_logits.cpu(), onset_logits.cpu()
    generator.train(was_training)
    voices, voice_onsets = decode(
        pitch_logits[0, :, :, :steps],
        onset_logits[0, :, :steps],
        config,
        moved,
        steps_per_bar,
        first_bar_start,
        temperature,
        seed,
    )
    voices = np.where(voices > 0, np.clip(voices.astype(int) - shift, 1, 127), 0).astype(np.uint8)
    return (
        np.concatenate([melody[None].astype(np.uint8), voices]),
        np.concatenate([onsets[None].astype(bool), voice_onsets]),
    )


@dataclass(frozen=True)
class Accompaniment:
    """A melody accompanied: the 4-track MIDI file, and the four voices on the grid (the melody
    as the model heard it on top) for the music metrics (`gan.metrics.describe`)."""

    midi: bytes
    pitches: np.ndarray  # uint8 [4, T], bar-aligned (a pickup padded with rests in front)
    onsets: np.ndarray  # bool [4, T]
    steps_per_bar: int

    @property
    def bars(self) -> int:
        return -(-int(self.pitches.shape[1]) // self.steps_per_bar)


def accompaniment(
    generator: Generator,
    melody_midi: bytes | Path,
    seed: int = 0,
    instruments: object = None,
    temperature: float = compositions.DEFAULT_TEMPERATURE,
) -> Accompaniment:
    """A melody MIDI file → its accompaniment (`Accompaniment`): the file's melody track is the
    input's melody note for note, with its tempo map, time signatures and ticks per beat; the
    three voices lie on the 16th-note grid of the same ticks.

    `instruments`: a preset name or four voices, as `contracts.instruments.resolve` takes them
    (None: the choir); `temperature` as `harmonise` takes it. Raises ValueError naming the field
    (`instruments...`, `temperature`) for bad instruments or temperature, before any work, and
    gan.midi.MidiError for a file that is not MIDI or has no notes."""
    from gan import midi

    voices = instrument_presets.resolve(instruments)
    temperature = check_temperature(temperature)
    melody = midi.read_melody(melody_midi)
    # read_melody pads a pickup in front, so bar lines fall every steps_per_bar from step 0.
    pitches, onsets = harmonise(
        generator, melody.pitches, melody.onsets, melody.steps_per_bar, seed, temperature=temperature
    )
    return Accompaniment(
        midi.write_accompaniment(melody, pitches, onsets, voices), pitches, onsets, melody.steps_per_bar
    )


def accompany(
    generator: Generator,
    melody_midi: bytes | Path,
    seed: int = 0,
    instruments: object = None,
    temperature: float = compositions.DEFAULT_TEMPERATURE,
) -> bytes:
    """`accompaniment`'s MIDI file alone."""
    return accompaniment(generator, melody_midi, seed, instruments, temperature).midi


def _instruments_flag(text: str) -> tuple[instrument_presets.Voice, ...]:
    try:
        return instrument_presets.from_text(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def _temperature_flag(text: str) -> float:
    try:
        return check_temperature(float(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def main(argv: Sequence[str] | None = None) -> int:
    from gan.midi import MidiError

    parser = argparse.ArgumentParser(description="Accompany a melody MIDI with a trained model.")
    parser.add_argument("model", type=Path, help="model.pt written by gan.train")
    parser.add_argument("melody", type=Path, help="a MIDI file; its first note track is the melody")
    parser.add_argument("out", type=Path, help="where to write the 4-track MIDI")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same MIDI (default 0)")
    parser.add_argument(
        "--temperature",
        type=_temperature_flag,
        default=compositions.DEFAULT_TEMPERATURE,
        help=f"how adventurous the voices are: 0 is the likeliest line, up to "
        f"{compositions.TEMPERATURE_MAX} samples more freely (default {compositions.DEFAULT_TEMPERATURE})",
    )
    parser.add_argument(
        "--instruments",
        type=_instruments_flag,
        default=instrument_presets.DEFAULT,
        help=f"a preset ({', '.join(sorted(instrument_presets.PRESETS))}; default "
        f"{instrument_presets.DEFAULT_PRESET}) or four voices, melody first, as JSON: "
        '\'[{"program": 73, "name": "Flute"}, 71, 70, 58]\' (General MIDI programs, 0-127)',
    )
    args = parser.parse_args(argv)
    try:
        args.out.write_bytes(
            accompany(load_generator(args.model), args.melody, args.seed, args.instruments, args.temperature)
        )
    except (MidiError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
