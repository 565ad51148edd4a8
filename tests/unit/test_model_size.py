"""The `model_size` hyperparameter end to end: the API refuses a size it does not know (a 400
naming the field) and stores the one it does; the container trains the preset it names; its
model file records the preset, so gan.generate and the compose function rebuild that network."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from contracts import training
from contracts.hyperparameters import BY_NAME
from gan import data as gan_data
from gan import midi
from gan.generate import accompany, load_generator
from gan.model import MODEL_SIZES, Critic, Generator, ModelConfig
from gan.reporter import LocalSink, Reporter
from gan.train import MODEL_FILE, Hyperparameters, Paths, main, train
from tests.unit.conftest import call_api


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def tiny_splits() -> gan_data.Splits:
    splits = gan_data.load_chorales()
    return gan_data.Splits(splits.train[:4], splits.validation[:1], splits.test[:1])


# --- the API ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["huge", "Large", "", 2])
def test_an_unknown_model_size_is_a_400_naming_the_field(aws: None, size: object) -> None:
    response = call_api("POST", "/jobs", body={"hyperparameters": {"model_size": size}})

    assert response.status == 400
    assert response.body["error"]["field"] == "hyperparameters.model_size"


def test_a_job_keeps_its_model_size_and_passes_it_to_the_training(aws: None) -> None:
    created = call_api("POST", "/jobs", body={"hyperparameters": {"model_size": "large", "epochs": 2}})
    default = call_api("POST", "/jobs", body={})

    assert created.status == 202, created.body
    job = call_api("GET", f"/jobs/{created.body['job_id']}").body
    assert job["hyperparameters"]["model_size"] == "large"
    assert call_api("GET", f"/jobs/{default.body['job_id']}").body["hyperparameters"]["model_size"] == "small"


# --- the presets --------------------------------------------------------------------------------


def test_small_is_the_unchanged_default_model_and_large_is_several_times_bigger() -> None:
    small, large = ModelConfig.preset("small"), ModelConfig.preset("large")

    assert small == ModelConfig()  # the 2-minute CPU model, as it was
    assert (small.size, large.size) == ("small", "large")
    assert set(MODEL_SIZES) == set(BY_NAME["model_size"].choices)
    assert _parameters(Generator(large)) > 5 * _parameters(Generator(small))
    assert _parameters(Critic(large)) > 2 * _parameters(Critic(small))
    assert len(Generator(large).latent) > len(Generator(small).latent)  # deeper, not only wider


def test_a_model_file_written_before_the_presets_still_loads_as_the_small_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    generator = Generator(ModelConfig())
    old_config = {k: v for k, v in ModelConfig().to_dict().items() if k not in ("latent_dilations", "size")}
    torch.save({"generator": generator.state_dict(), "config": old_config}, tmp_path / "old.pt")

    loaded = load_generator(tmp_path / "old.pt")

    assert loaded.config == ModelConfig()
    pairs = zip(loaded.state_dict().values(), generator.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


# --- training and composing with the large model ------------------------------------------------


def test_the_container_trains_the_large_preset_and_its_model_composes(tmp_path: Path, tiny_splits) -> None:
    hp = Hyperparameters(epochs=1, update_ratio=1, batch_size=4, model_size="large")
    paths = Paths.from_env({"SM_MODEL_DIR": f"{tmp_path}/model", "SM_OUTPUT_DATA_DIR": f"{tmp_path}/out"})

    figures = train(hp, paths, Reporter([LocalSink(paths.output)]), None, tiny_splits, steps_per_epoch=1,
                    device=torch.device("cpu"))

    assert np.isfinite(figures["generator_loss"]) and np.isfinite(figures["critic_loss"])
    saved = torch.load(paths.model / MODEL_FILE, map_location="cpu", weights_only=False)
    assert saved["config"]["size"] == "large" and saved["hyperparameters"]["model_size"] == "large"
    generator = load_generator(paths.model / MODEL_FILE)
    assert generator.config == ModelConfig.preset("large")
    # The compose function's path: model.tar.gz as SageMaker packs SM_MODEL_DIR, unpacked, composing.
    from lambdas.compose.model_store import unpack

    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(paths.model / MODEL_FILE, arcname=training.MODEL_FILE)
    composer = unpack(archive.getvalue())
    assert composer.config.size == "large"
    steps = 32
    melody = midi.write_chorale(
        np.repeat(np.array([67, 69, 71, 72] * 2, dtype=np.uint8), 4)[None, :steps],
        np.tile([True, False, False, False], steps // 4)[None], tempo_bpm=90, steps_per_bar=16,
    )
    out = accompany(composer, melody, seed=1)
    assert midi.read_tracks(out).pitches.shape[0] == 4


def test_a_model_size_the_container_does_not_know_fails_the_job_naming_it(tmp_path: Path) -> None:
    # As SageMaker passes it (hyperparameters.json), from a caller that skipped the API's check.
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps({"model_size": "huge"}))
    env = {"SM_MODEL_DIR": str(tmp_path / "model"), "SM_OUTPUT_DATA_DIR": str(tmp_path / "output" / "data"),
           "SM_INPUT_CONFIG_DIR": str(config), "OPENCOMPOSER_DEVICE": "cpu"}

    assert main([], env) == 1
    assert "model_size" in (tmp_path / "output" / "failure").read_text()
