"""The GAN's networks and its encoding: shapes, the gradient penalty, decoding, generation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan.encoding import Windows, decode, meter_features, parallel_perfects, to_classes
from gan.generate import harmonise, octave_shift
from gan.model import Critic, Generator, ModelConfig, as_critic_input, gradient_penalty


@pytest.fixture(scope="module")
def config() -> ModelConfig:
    return ModelConfig()


@pytest.fixture(scope="module")
def generator(config: ModelConfig) -> Generator:
    torch.manual_seed(0)
    return Generator(config).eval()


def _melody(steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pitches = np.repeat(rng.integers(60, 80, steps // 4), 4).astype(np.uint8)
    onsets = np.zeros(steps, dtype=bool)
    onsets[::4] = True
    return pitches, onsets


def test_generator_outputs_three_voices_over_the_whole_window(config, generator):
    cond = torch.randn(2, config.condition_channels, config.window)
    noise = torch.randn(generator.noise_shape(2, config.window))

    pitch_logits, onset_logits = generator(cond, noise)

    assert pitch_logits.shape == (2, 3, config.classes, config.window)
    assert onset_logits.shape == (2, 3, config.window)


def test_the_pitch_range_is_fitted_to_the_chorales(config):
    # 36-81 (46 pitches) plus rest, not the lab's 128-pitch image
    assert config.classes == 47


def test_critic_scores_each_window_once(config, generator):
    critic = Critic(config)
    cond = torch.randn(3, config.condition_channels, config.window)
    fake = as_critic_input(*generator(cond, torch.randn(generator.noise_shape(3, config.window))))

    assert fake.shape == (3, config.voices * config.voice_channels, config.window)
    assert critic(cond, fake).shape == (3,)
    convs = [m for m in critic.modules() if isinstance(m, torch.nn.Conv1d)]
    linears = [m for m in critic.modules() if isinstance(m, torch.nn.Linear)]
    assert (len(convs), len(linears)) == (4, 1)


def test_critic_input_is_one_hot_but_passes_gradient_to_the_logits(config):
    logits = torch.randn(2, 3, config.classes, 8, requires_grad=True)
    onsets = torch.randn(2, 3, 8, requires_grad=True)

    x = as_critic_input(logits, onsets).view(2, 3, config.voice_channels, 8)

    assert torch.allclose(x, x.round(), atol=1e-6)  # hard values forward (soft gradients back)
    assert torch.allclose(x[:, :, :-1].sum(2), torch.ones(2, 3, 8))  # one pitch-or-rest per step
    (x * torch.randn_like(x)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert onsets.grad is not None and onsets.grad.abs().sum() > 0


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic(config):
    class Linear(Critic):
        def forward(self, cond, voices):  # ‖∇‖ = 1 everywhere
            return voices.flatten(1)[:, 0]

    real, fake = torch.rand(4, 3 * config.voice_channels, 64), torch.rand(4, 3 * config.voice_channels, 64)
    cond = torch.zeros(4, config.condition_channels, 64)

    assert gradient_penalty(Linear(config), cond, real, fake).item() == pytest.approx(0.0)


def test_gradient_penalty_grows_with_a_steeper_critic(config):
    class Steep(Critic):
        def forward(self, cond, voices):
            return 3 * voices.flatten(1)[:, 0]

    real, fake = torch.rand(4, 3 * config.voice_channels, 64), torch.rand(4, 3 * config.voice_channels, 64)
    cond = torch.zeros(4, config.condition_channels, 64)

    assert gradient_penalty(Steep(config), cond, real, fake).item() == pytest.approx(4.0)  # (3 - 1)²


def test_meter_features_mark_bars_beats_and_eighths():
    m = meter_features(24, steps_per_bar=12)

    assert m[0].nonzero()[0].tolist() == [0, 12]
    assert m[1].nonzero()[0].tolist() == [0, 4, 8, 12, 16, 20]
    assert m[2].sum() == 12


def test_classes_map_rests_and_clip_out_of_range_pitches(config):
    assert to_classes(np.array([0, 36, 81, 20, 100]), config).tolist() == [0, 1, 46, 1, 46]


def test_decode_keeps_repeated_notes_apart_on_beats_only(config):
    logits = torch.full((1, config.classes, 8), -10.0)
    logits[0, 60 - config.low_pitch + 1] = 10.0  # C4 for all eight steps
    onsets = torch.tensor([[-5.0, -5.0, 5.0, -5.0, 5.0, -5.0, -5.0, 5.0]])  # new notes at 2, 4, 7

    pitches, note_starts = decode(logits, onsets, config)

    assert pitches.tolist() == [[60] * 8]
    # Bach repeats a note on beats, not on an eighth or a 16th: only step 4 starts one.
    assert note_starts.tolist() == [[True, False, False, False, True, False, False, False]]


def _two_pitch_logits(config: ModelConfig, steps: int, favourite: np.ndarray) -> torch.Tensor:
    """One voice; at each step C4 or G3 (`favourite` True: C4) is the likelier by a small margin."""
    logits = torch.full((1, config.classes, steps), -10.0)
    c4, g3 = 60 - config.low_pitch + 1, 55 - config.low_pitch + 1
    logits[0, c4] = torch.where(torch.as_tensor(favourite), 2.0, 1.6)
    logits[0, g3] = torch.where(torch.as_tensor(favourite), 1.6, 2.0)
    return logits


def test_decode_holds_a_note_where_the_model_flickers_on_sixteenths(config):
    # Given an alto that the argmax would sing C4 G3 C4 G3 ... on 16ths for two beats
    favourite = np.arange(8) % 2 == 0
    onsets = torch.full((1, 8), -5.0)

    # When it is decoded
    pitches, note_starts = decode(_two_pitch_logits(config, 8, favourite), onsets, config)

    # Then it holds one note per beat
    assert len(set(pitches[0, :4].tolist())) == 1 and len(set(pitches[0, 4:].tolist())) == 1
    assert note_starts[0, [1, 2, 3, 5, 6, 7]].tolist() == [False] * 6


def test_decode_keeps_a_clear_change_on_a_beat_and_on_an_eighth(config):
    # C4 for a beat, G3 for an eighth, C4 again from the next beat: every change is on a beat or
    # an eighth and the model is sure of each, so nothing is smoothed away.
    favourite = np.array([True] * 4 + [False] * 2 + [True] * 6)
    logits = _two_pitch_logits(config, 12, favourite) * 3  # margins of 1.2 nats
    pitches, note_starts = decode(logits, torch.full((1, 12), -5.0), config)

    assert pitches.tolist() == [[60] * 4 + [55] * 2 + [60] * 6]
    assert np.flatnonzero(note_starts[0]).tolist() == [0, 4, 6]


def test_decode_drops_an_unsure_lone_sixteenth_and_keeps_a_sure_one_from_the_beat(config):
    favourite = np.array([True] + [False] + [True] * 6)  # G3 on the second 16th only
    onsets = torch.full((1, 8), -5.0)

    unsure, _ = decode(_two_pitch_logits(config, 8, favourite), onsets, config)
    sure_logits = _two_pitch_logits(config, 8, favourite)
    sure_logits[0, 55 - config.low_pitch + 1, 1] = 9.0  # the model is certain of that G3
    sure, _ = decode(sure_logits, onsets, config)

    assert unsure.tolist() == [[60] * 8]
    # The sure G3 sounds, starting on the beat: a change there is cheaper than on a 16th.
    assert sure.tolist() == [[55, 55] + [60] * 6]


def test_windows_transpose_inside_the_range(config):
    class Piece:
        steps_per_bar = 16
        pitches = np.stack([np.full(128, 80), np.full(128, 70), np.full(128, 60), np.full(128, 40)]).astype(
            np.uint8
        )
        onsets = np.zeros((4, 128), dtype=bool)

    windows = Windows([Piece()], config)
    batch = windows.sample(64, torch.Generator().manual_seed(0))

    melody_class = batch.condition[:, : config.classes].argmax(1)[:, 0]
    shifts = melody_class + config.low_pitch - 1 - 80
    assert shifts.min() >= -4 and shifts.max() <= 1  # 40 - 4 = 36 and 80 + 1 = 81 at the limits
    assert len(shifts.unique()) > 1
    assert batch.classes.shape == (64, 3, config.window)
    assert torch.equal(batch.classes[:, 0] - batch.classes[:, 2], torch.full((64, 64), 30))  # intervals kept


@pytest.mark.parametrize("steps", [0, 8, 48, 256, 1000])
def test_harmonise_any_length_keeps_the_melody(generator, steps):
    melody, onsets = _melody(steps)

    pitches, note_starts = harmonise(generator, melody, onsets, steps_per_bar=16, seed=3)

    assert pitches.shape == note_starts.shape == (4, steps)
    assert np.array_equal(pitches[0], melody)
    assert np.array_equal(note_starts[0], onsets)


def test_harmonise_is_deterministic_for_a_seed(generator):
    melody, onsets = _melody(64)

    first = harmonise(generator, melody, onsets, 16, seed=5)
    again = harmonise(generator, melody, onsets, 16, seed=5)

    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_a_melody_out_of_the_soprano_range_moves_by_octaves():
    assert octave_shift(np.array([60, 64, 67, 72])) == 0
    assert octave_shift(np.array([84, 88, 91])) == -12  # -24 would fit too: the smaller move wins
    assert octave_shift(np.array([36, 40, 43, 0])) == 24
    assert octave_shift(np.zeros(4, dtype=np.uint8)) == 0


def test_config_round_trips_through_a_dict(config):
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_parallel_perfects_follow_the_metrics_definition():
    c_major, d_major = np.array([72, 67, 60, 48]), np.array([74, 69, 62, 50])  # every voice up a step

    assert parallel_perfects(c_major, d_major)  # fifths and octaves, all moving up
    assert not parallel_perfects(c_major, np.array([72, 65, 64, 55]))  # contrary and oblique motion
    assert not parallel_perfects(np.array([67, 60, 0, 0]), np.array([69, 0, 0, 0]))  # a voice rests


def test_decode_trades_a_parallel_fifth_for_the_next_likeliest_chord(config):
    def cls(pitch: int) -> int:
        return pitch - config.low_pitch + 1

    # Beat 1: E5 over C5, G4, C3. Beat 2, argmax: the melody F5, alto holds C5, tenor and bass
    # up a step to A4 and D3: a parallel fifth. The tenor's runner-up F4 has none.
    melody = np.array([76] * 4 + [77] * 4, dtype=np.uint8)
    logits = torch.full((3, config.classes, 8), -10.0)
    logits[0, cls(72)] = 5.0
    logits[1, cls(67), :4], logits[1, cls(69), 4:], logits[1, cls(65), 4:] = 5.0, 5.0, 4.5
    logits[2, cls(48), :4], logits[2, cls(50), 4:] = 5.0, 5.0
    onset_logits = torch.full((3, 8), -5.0)

    plain, _ = decode(logits, onset_logits, config)
    voiced, onsets = decode(logits, onset_logits, config, melody=melody)

    assert plain[:, 4].tolist() == [72, 69, 50]
    assert voiced[:, 4:].tolist() == [[72] * 4, [65] * 4, [50] * 4]
    assert voiced[:, :4].tolist() == plain[:, :4].tolist()  # beat 1 untouched
    assert onsets[:, 4].tolist() == [False, True, True]  # the alto holds its note


def test_the_parallels_repair_changes_the_whole_note_it_replaces(config):
    def cls(pitch: int) -> int:
        return pitch - config.low_pitch + 1

    # The tenor moves G4 → A4 on the eighth before beat 2, where the bass moves C3 → D3: a
    # parallel fifth on the beats. The tenor's runner-up for that note is F4.
    melody = np.array([76] * 4 + [77] * 4, dtype=np.uint8)
    logits = torch.full((3, config.classes, 8), -10.0)
    logits[0, cls(72)] = 5.0
    logits[1, cls(67), :2], logits[1, cls(69), 2:], logits[1, cls(65), 2:] = 5.0, 5.0, 4.5
    logits[2, cls(48), :4], logits[2, cls(50), 4:] = 5.0, 5.0

    pitches, onsets = decode(logits, torch.full((3, 8), -5.0), config, melody=melody)

    # F4 replaces the A4 from where it starts, not from the beat: no eighth-long A4 is left.
    assert pitches[1].tolist() == [67, 67] + [65] * 6
    assert np.flatnonzero(onsets[1]).tolist() == [0, 2]


def test_generate_command_writes_a_four_track_midi_and_rejects_a_non_midi_melody(tmp_path, generator, capsys):
    from gan import generate, midi

    model = tmp_path / "model.pt"
    torch.save({"generator": generator.state_dict(), "config": generator.config.to_dict()}, model)
    pitches, onsets = _melody(16 * 16)
    melody = tmp_path / "melody.mid"
    melody.write_bytes(midi.write_chorale(pitches[None], onsets[None], tempo_bpm=72, steps_per_bar=16))

    assert generate.main([str(model), str(melody), str(tmp_path / "out.mid"), "--seed", "2"]) == 0
    written = midi.read_tracks(tmp_path / "out.mid")
    assert written.pitches.shape == (4, 16 * 16)
    assert np.array_equal(written.pitches[0], pitches)
    assert written.tempo_bpm == pytest.approx(72)

    (tmp_path / "notes.mid").write_text("not MIDI")
    assert generate.main([str(model), str(tmp_path / "notes.mid"), str(tmp_path / "bad.mid")]) == 1
    assert "not a readable MIDI file" in capsys.readouterr().err
    assert not (tmp_path / "bad.mid").exists()


@pytest.mark.parametrize("size", ["small", "large"])
def test_each_model_size_harmonises_a_melody_of_any_length(size: str):
    # The large preset's deeper bottleneck (dilations up to 16 at 1/8 resolution) still pads to
    # any length, short phrases included.
    torch.manual_seed(0)
    generator = Generator(ModelConfig.preset(size)).eval()
    for steps in (8, 44, 200):
        melody, onsets = _melody(steps)
        voices, voice_onsets = harmonise(generator, melody, onsets, 16, seed=0)
        assert voices.shape == voice_onsets.shape == (4, steps)
        assert np.array_equal(voices[0], melody)
