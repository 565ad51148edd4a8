"""Train the accompaniment GAN: the SageMaker script-mode entry point (`python -m gan.train`).

The same script runs under SageMaker, under the local stack's runner and on a laptop: every path
comes from the SageMaker variables (docs/contracts.md), with a local fallback under `./sm/`.

    python -m gan.train --epochs 20 --learning_rate 0.001 --update_ratio 5 --batch_size 64 --seed 0
    python -m gan.train train              # as SageMaker runs the image: /opt/ml/input/config's files
                                           # (gan/entrypoint.py); the image's ENTRYPOINT
    python -m gan.train --dry-run          # one short cycle of everything, for CI

An epoch is a fixed number of generator updates (`STEPS_PER_EPOCH`), not a pass over the data,
so `epochs` alone sets the training time, whatever the size of the dataset.

One file on purpose, as nanoGPT's `train.py`: SageMaker runs one script, and its inputs, the
training step, the epoch loop and the entry point read top to bottom in the order they run.
`train_step` is the one training iteration; `bench/bench_training.py` times that same function.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from contracts import training as training_contract
from contracts.compositions import DEFAULT_TEMPERATURE
from contracts.datasets import DATASET_CHANNEL, TAGS_HYPERPARAMETER
from contracts.hyperparameters import DEFAULTS, HYPERPARAMETERS, parse_sagemaker
from contracts.instruments import resolve as resolve_instruments
from contracts.training import FAILURE_REASON_MAX, MELODY_CHANNEL
from gan import data as gan_data
from gan import datasets as gan_datasets
from gan import distributed
from gan.cpus import usable_cpus
from gan.device import Precision, moved, pick_device, use
from gan.encoding import Batch, Windows
from gan.generate import accompany, harmonise
from gan.model import Critic, Generator, ModelConfig, as_critic_input, gradient_penalty
from gan.reporter import Reporter, Stopped

log = logging.getLogger("gan.train")

STEPS_PER_EPOCH = 12  # generator updates per epoch
SAMPLE_EVERY = 5  # epochs between sample MIDI files (and the last epoch)
SAMPLE_TEMPO_BPM = 100  # the corpus has no tempo; the lab wrote its MIDI at 100 bpm
GRADIENT_PENALTY_WEIGHT = 10.0  # WGAN-GP's λ (Gulrajani et al. 2017)
ADVERSARIAL_WEIGHT = 0.1  # the critic's term in the generator's loss, beside the supervised term
ADAM_BETAS = (0.5, 0.9)  # the lab's and WGAN-GP's
FINAL_LEARNING_RATE = 0.1  # cosine decay to this share of `learning_rate` by the last epoch
CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = training_contract.MODEL_FILE
FINAL_COMPOSITION = "final"
STOP_EXIT_CODE = 128 + signal.SIGTERM


@dataclass
class Hyperparameters:
    """What a job may set, typed for the training code: names, types, defaults, ranges and
    checks are `contracts.hyperparameters`' (tests/unit/test_gan_train.py checks the fields)."""

    epochs: int = int(DEFAULTS["epochs"])
    learning_rate: float = float(DEFAULTS["learning_rate"])
    update_ratio: int = int(DEFAULTS["update_ratio"])
    batch_size: int = int(DEFAULTS["batch_size"])
    seed: int = int(DEFAULTS["seed"])
    model_size: str = str(DEFAULTS["model_size"])

    def __post_init__(self) -> None:
        for spec in HYPERPARAMETERS:
            if (problem := spec.error(getattr(self, spec.name))) is not None:
                raise ValueError(problem)

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> Hyperparameters:
        """From SageMaker's strings (or numbers); unknown names are ignored (SageMaker adds its own)."""
        return cls(**parse_sagemaker(values))  # type: ignore[arg-type]


@dataclass
class Paths:
    """Where SageMaker (docs/contracts.md) puts things; a local fallback under `./sm/`."""

    model: Path
    output: Path
    checkpoints: Path
    failure: Path
    melody: Path | None  # the melody channel's folder
    training: Path | None  # a folder of the user's multi-track MIDI
    dataset: Path | None = None  # a built dataset (pieces.npz, index.json: gan.datasets)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], checkpoint_dir: str | None = None) -> Paths:
        model = Path(environ.get("SM_MODEL_DIR", "sm/model"))
        output = Path(environ.get("SM_OUTPUT_DATA_DIR", "sm/output/data"))
        checkpoints = (
            checkpoint_dir or environ.get("OPENCOMPOSER_CHECKPOINT_DIR") or model.parent / "checkpoints"
        )
        melody = environ.get(f"SM_CHANNEL_{MELODY_CHANNEL.upper()}")
        training = environ.get("SM_CHANNEL_TRAINING")
        dataset = environ.get(f"SM_CHANNEL_{DATASET_CHANNEL.upper()}")
        return cls(
            model=model,
            output=output,
            checkpoints=Path(checkpoints),
            failure=output.parent / "failure",
            melody=Path(melody) if melody else None,
            training=Path(training) if training else None,
            dataset=Path(dataset) if dataset else None,
        )


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped()


# --- inputs ------------------------------------------------------------------------------------


def read_hyperparameters(flags: argparse.Namespace, environ: Mapping[str, str]) -> Hyperparameters:
    """hyperparameters.json (SM_INPUT_CONFIG_DIR), then SM_HPS, then command-line flags: later wins."""
    values: dict[str, Any] = {}
    config_dir = environ.get("SM_INPUT_CONFIG_DIR")
    if config_dir and (Path(config_dir) / "hyperparameters.json").exists():
        values.update(json.loads((Path(config_dir) / "hyperparameters.json").read_text()))
    if environ.get("SM_HPS"):
        values.update(json.loads(environ["SM_HPS"]))
    values.update(
        {
            k: v
            for k, v in vars(flags).items()
            if k in DEFAULTS and v is not None
        }
    )
    return Hyperparameters.parse(values)


def read_tags(flags: argparse.Namespace, environ: Mapping[str, str]) -> list[str]:
    """The job's filtering tags (`contracts.datasets.TAGS_HYPERPARAMETER`), from the same
    places as the hyperparameters, later wins; none: every piece."""
    raw: object = None
    config_dir = environ.get("SM_INPUT_CONFIG_DIR")
    if config_dir and (Path(config_dir) / "hyperparameters.json").exists():
        values = json.loads((Path(config_dir) / "hyperparameters.json").read_text())
        raw = values.get(TAGS_HYPERPARAMETER, raw)
    if environ.get("SM_HPS"):
        raw = json.loads(environ["SM_HPS"]).get(TAGS_HYPERPARAMETER, raw)
    if getattr(flags, TAGS_HYPERPARAMETER, None) is not None:
        raw = getattr(flags, TAGS_HYPERPARAMETER)
    return [] if raw is None else gan_datasets.parse_tags(raw)


def find_melody(folder: Path | None) -> bytes | None:
    """The one MIDI file in the melody channel, or None for no channel."""
    if folder is None:
        return None
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".mid", ".midi"))
    if len(files) != 1:
        raise ValueError(f"the melody channel must hold one .mid file, it holds {len(files)} in {folder}")
    return files[0].read_bytes()


def load_dataset(
    training: Path | None, dataset: Path | None = None, tags: Sequence[str] = ()
) -> gan_data.Splits:
    """Bach's chorales, the built dataset of the dataset channel, or the user's multi-track MIDI
    folder of the training channel; with `tags`, only the pieces carrying every one of them
    (too little left is a ValueError saying so, `gan.datasets.select`)."""
    tags = list(tags)
    if dataset is not None:
        chorales = gan_datasets.select(gan_datasets.load_built(dataset), tags, "the job's dataset")
        log.info("training on %d pieces of the job's dataset (tags %s)", len(chorales), tags)
        return _split(chorales)
    if training is None:
        splits = gan_data.load_chorales()
        if not tags:
            return splits
        chorales = splits.train + splits.validation + splits.test
        pieces = [(c, gan_datasets.chorale_tags(c)) for c in chorales]
        # The melody hash puts each piece in the same split whatever else is kept.
        return _split(gan_datasets.select(pieces, tags, "Bach's chorales"))
    chorales, rejected = gan_data.load_midi_folder(training)
    for name, reason in rejected:
        log.warning("training file %s rejected: %s", name, reason)
    if not chorales:
        reasons = "; ".join(f"{n}: {r}" for n, r in rejected[:5]) or "the folder is empty"
        raise ValueError(f"no usable multi-track MIDI in the training channel ({reasons})")
    if tags:
        pieces = [(c, gan_datasets.chorale_tags(c)) for c in chorales]
        chorales = gan_datasets.select(pieces, tags, "the training channel")
    log.info("training on %d of the user's pieces (%d rejected)", len(chorales), len(rejected))
    return _split(chorales)


def _split(chorales: list[gan_data.Chorale]) -> gan_data.Splits:
    """Pieces split by melody; a few pieces can all hash into the held-out shares."""
    splits = gan_data.split_by_melody(chorales)
    if not splits.train:  # a handful of files can all hash into the held-out shares
        splits.train = splits.validation + splits.test
    if not splits.validation:
        splits.validation = splits.train[:1]
    return splits


# --- the training loop --------------------------------------------------------------------------


def learning_rate(hp: Hyperparameters, step: int, total: int) -> float:
    """Cosine decay from `learning_rate` to FINAL_LEARNING_RATE of it: a pure function of the
    step, so a resumed job continues on the same schedule."""
    share = FINAL_LEARNING_RATE + (1 - FINAL_LEARNING_RATE) * 0.5 * (
        1 + math.cos(math.pi * min(step / total, 1))
    )
    return hp.learning_rate * share


def new_state(hp: Hyperparameters, config: ModelConfig, device: torch.device | None = None) -> dict[str, Any]:
    """Fresh networks on `device` (default the CPU), their optimizers and the job's generator of
    random draws. The weights are initialised on the CPU from the seed, then moved: a seed starts
    from the same weights on any device."""
    device = device or torch.device("cpu")
    torch.manual_seed(hp.seed)
    generator, critic = Generator(config).to(device), Critic(config).to(device)
    return {
        "generator": generator,
        "critic": critic,
        # After the move: the optimizers' state lives where their parameters do.
        "g_optimizer": torch.optim.Adam(generator.parameters(), hp.learning_rate, betas=ADAM_BETAS),
        "c_optimizer": torch.optim.Adam(critic.parameters(), hp.learning_rate, betas=ADAM_BETAS),
        "rng": torch.Generator().manual_seed(hp.seed),
        "epoch": 0,
        "device": device,
        "precision": Precision.for_device(device),
    }


def save_checkpoint(path: Path, state: dict[str, Any], hp: Hyperparameters) -> None:
    """One dict (nanoGPT's form), written beside the target and renamed: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "generator": state["generator"].state_dict(),
            "critic": state["critic"].state_dict(),
            "g_optimizer": state["g_optimizer"].state_dict(),
            "c_optimizer": state["c_optimizer"].state_dict(),
            "rng": state["rng"].get_state(),
            "torch_rng": torch.get_rng_state(),
            "scalers": state["precision"].state_dict(),  # float16 on CUDA only; else empty
            "epoch": state["epoch"],
            "config": state["generator"].config.to_dict(),
            "hyperparameters": asdict(hp),
        },
        tmp,
    )
    os.replace(tmp, path)


def load_checkpoint(path: Path, hp: Hyperparameters, device: torch.device | None = None) -> dict[str, Any]:
    """The checkpoint's state on `device`, whichever device wrote it: read onto the CPU, then
    each state dict loaded into networks and optimizers already on `device` (a load_state_dict
    copies onto the parameters' device; Adam's moments follow their parameters)."""
    saved = torch.load(path, map_location="cpu", weights_only=False)
    state = new_state(hp, ModelConfig.from_dict(saved["config"]), device)
    for name in ("generator", "critic", "g_optimizer", "c_optimizer"):
        state[name].load_state_dict(saved[name])
    state["precision"].load_state_dict(saved.get("scalers", {}))
    state["rng"].set_state(saved["rng"])
    torch.set_rng_state(saved["torch_rng"])
    state["epoch"] = saved["epoch"]
    return state


class BatchSource(Protocol):
    """Where `train_step` draws its batches: `gan.encoding.Windows` in training, a fixed
    synthetic batch in the benchmark."""

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch: ...


def train_step(
    state: dict[str, Any],
    batches: BatchSource,
    hp: Hyperparameters,
    lr: float,
    world: distributed.World = distributed.ALONE,
) -> dict[str, torch.Tensor]:
    """One training iteration at learning rate `lr`: update_ratio critic updates, then one
    generator update. The losses come back as detached tensors rather than floats, so that a
    step on a GPU need not wait for the device (the benchmark times this function). Across
    hosts (`world`), each draws its share of the batch and every gradient is averaged before
    each update."""
    generator, critic = state["generator"], state["critic"]
    g_opt, c_opt, rng = state["g_optimizer"], state["c_optimizer"], state["rng"]
    device = state.get("device", torch.device("cpu"))
    precision: Precision = state.get("precision") or Precision()
    batch_size = world.batch(hp.batch_size)
    generator.train()
    for group in (*g_opt.param_groups, *c_opt.param_groups):
        group["lr"] = lr

    def noise(batch: Batch) -> torch.Tensor:
        # Drawn from the job's own CPU generator whatever the device: a seed trains the same
        # model, and a resumed job continues the same draws (the generator is checkpointed).
        shape = generator.noise_shape(batch_size, batch.condition.size(-1))
        return torch.randn(shape, generator=rng).to(batch.condition.device)

    # (1) Update the critic: maximise critic(Bach) - critic(generated) - λ·penalty. Under
    # `precision` (autocast on CUDA) the forward passes; the penalty in float32 outside it.
    for _ in range(hp.update_ratio):
        batch = moved(batches.sample(batch_size, rng), device)
        with precision.autocast():
            with torch.no_grad():
                fake = as_critic_input(*generator(batch.condition, noise(batch)))
            real_score = critic(batch.condition, batch.voices).float().mean()
            fake_score = critic(batch.condition, fake).float().mean()
        penalty = gradient_penalty(critic, batch.condition, batch.voices, fake.float())
        c_loss = fake_score - real_score + GRADIENT_PENALTY_WEIGHT * penalty
        c_opt.zero_grad(set_to_none=True)
        precision.backward(c_loss, "critic")
        distributed.average_gradients(critic, world)
        precision.step(c_opt, "critic")
    # (2) Update the generator: fool the critic, and match Bach's voices (supervised term)
    batch = moved(batches.sample(batch_size, rng), device)
    with precision.autocast():
        pitch_logits, onset_logits = generator(batch.condition, noise(batch))
        adversarial = -critic(batch.condition, as_critic_input(pitch_logits, onset_logits)).float().mean()
        # Autocast runs both losses in float32 whatever the logits' type.
        supervised = F.cross_entropy(
            pitch_logits.transpose(1, 2), batch.classes
        ) + F.binary_cross_entropy_with_logits(onset_logits, batch.onsets)
    g_loss = ADVERSARIAL_WEIGHT * adversarial + supervised
    g_opt.zero_grad(set_to_none=True)
    precision.backward(g_loss, "generator")
    distributed.average_gradients(generator, world)
    precision.step(g_opt, "generator")
    return {
        "generator_loss": g_loss.detach(),
        "critic_loss": c_loss.detach(),
        "supervised_loss": supervised.detach(),
        "wasserstein": (real_score - fake_score).detach(),
    }


def train_epoch(
    state: dict[str, Any],
    windows: Windows,
    hp: Hyperparameters,
    steps: int,
    world: distributed.World = distributed.ALONE,
) -> dict[str, float]:
    """`steps` training steps along the learning-rate schedule; the mean of each loss (over
    the steps, and over the hosts)."""
    totals: dict[str, float] = {}
    for step in range(steps):
        lr = learning_rate(hp, state["epoch"] * steps + step, hp.epochs * steps)
        for name, loss in train_step(state, windows, hp, lr, world).items():
            totals[name] = totals.get(name, 0.0) + loss.item()
    return distributed.average({k: v / steps for k, v in totals.items()}, world)


# The per-epoch validation figures, the per-epoch samples and the final composition decode at
# the default temperature, not 0: they are there to show what the model composes for a user, and
# a composition (the API, `python -m gan.generate`) decodes at the default unless asked otherwise.
# The decoder's noise is seeded by hp.seed and so is drawn the same at every epoch: the figures'
# change from one epoch to the next is still the model's alone. At the default every quality bar
# holds on the test split (bench/bench_variety.py), so the figures stay comparable to the bench.
TRAINING_TEMPERATURE = DEFAULT_TEMPERATURE


def validate(generator: Generator, chorales: Sequence[gan_data.Chorale], seed: int) -> dict[str, float]:
    """The music metrics and the similarity index of the generator's voices under the
    validation melodies (Bach's own values are the reference)."""
    from gan import metrics

    pieces = [
        harmonise(
            generator, c.pitches[0], c.onsets[0], c.steps_per_bar, seed=seed, temperature=TRAINING_TEMPERATURE
        )
        for c in chorales
    ]
    generated = [
        gan_data.Chorale(c.name, p, o, c.steps_per_bar) for c, (p, o) in zip(chorales, pieces, strict=True)
    ]
    return metrics.evaluate(generated, reference=chorales)


def harmonise_chorale_melody(
    generator: Generator, chorale: gan_data.Chorale, seed: int, instruments: object = None
) -> bytes:
    """A chorale's melody accompanied by the generator, as MIDI (the per-epoch sample, and the
    final composition of a job without a melody). The dataset's soprano lies on the grid, so
    the grid writer gives it back as read; `instruments` as `contracts.instruments.resolve`
    takes them."""
    from gan import midi

    pitches, onsets = harmonise(
        generator,
        chorale.pitches[0],
        chorale.onsets[0],
        chorale.steps_per_bar,
        seed,
        temperature=TRAINING_TEMPERATURE,
    )
    return midi.write_chorale(
        pitches,
        onsets,
        tempo_bpm=SAMPLE_TEMPO_BPM,
        steps_per_bar=chorale.steps_per_bar,
        instruments=instruments,
    )


def train(
    hp: Hyperparameters,
    paths: Paths,
    reporter: Reporter,
    melody_midi: bytes | None,
    splits: gan_data.Splits,
    steps_per_epoch: int = STEPS_PER_EPOCH,
    config: ModelConfig | None = None,
    instruments: object = None,
    world: distributed.World = distributed.ALONE,
    device: torch.device | None = None,
) -> dict[str, Any]:
    """Train from scratch or from the checkpoint, report each epoch, write the model and the
    accompanied melody. The samples and the composition play `instruments` (a preset name or
    four voices, `contracts.instruments`; None: the choir). Returns the last epoch's figures.

    Across several hosts (`world`, `gan.distributed`) each trains on its shard of the pieces,
    and only the leader validates, reports, checkpoints and writes the model and composition;
    the others return {}.

    The networks train on `device` (default: gan.device.pick_device, CUDA when there is a GPU);
    `config` defaults to the `model_size` preset (a resumed job keeps its checkpoint's)."""
    from gan import metrics

    voices = resolve_instruments(instruments)  # a bad value fails before the training, not after
    device = device or pick_device()
    config = config or ModelConfig.preset(hp.model_size)
    checkpoint = paths.checkpoints / CHECKPOINT_FILE
    if checkpoint.exists():
        state = load_checkpoint(checkpoint, hp, device)
        config = state["generator"].config
        log.info("resumed from %s after epoch %d", checkpoint, state["epoch"])
    else:
        state = new_state(hp, config, device)
    windows = Windows(world.shard(splits.train), config)
    log.info("training the %s model on %s (%s)", config.size, device, state["precision"].name)
    if world.parallel:
        _join_hosts(state, world)
    if world.leader:  # what this job trains on, after its tags (the whole split, every host's shard)
        trained = sum(gan_datasets.count_windows(c.pitches[0], config.window) for c in splits.train)
        reporter.training_data(len(splits.train), trained)
    if state["epoch"] == 0 and world.leader:
        reporter.reference(metrics.evaluate(splits.validation, reference=splits.validation))
    sample_melody = splits.validation[0]
    figures: dict[str, float] = {}
    while state["epoch"] < hp.epochs:
        started = time.perf_counter()
        figures = train_epoch(state, windows, hp, steps_per_epoch, world)
        state["epoch"] += 1
        epoch = state["epoch"]
        if not world.leader:
            continue
        figures.update(validate(state["generator"], splits.validation, hp.seed))
        figures["seconds"] = time.perf_counter() - started
        log.info("epoch %d/%d %s", epoch, hp.epochs, " ".join(f"{k}={v:.4g}" for k, v in figures.items()))
        reporter.epoch(epoch, hp.epochs, figures)
        if epoch % SAMPLE_EVERY == 0 or epoch == hp.epochs:
            sample = harmonise_chorale_melody(state["generator"], sample_melody, hp.seed, voices)
            reporter.sample(epoch, sample)
        save_checkpoint(checkpoint, state, hp)
    if not world.leader:
        return {}
    paths.model.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            # CPU tensors: the model file is read on the CPU (the compose function, gan.generate).
            "generator": {k: v.cpu() for k, v in state["generator"].state_dict().items()},
            "config": state["generator"].config.to_dict(),
            "epoch": state["epoch"],
            "hyperparameters": asdict(hp),
            "metrics": figures,
        },
        paths.model / MODEL_FILE,
    )
    if melody_midi is None:  # no melody channel: the fixed validation melody
        final = harmonise_chorale_melody(state["generator"], sample_melody, hp.seed, voices)
    else:
        final = accompany(
            state["generator"],
            melody_midi,
            seed=hp.seed,
            instruments=voices,
            temperature=TRAINING_TEMPERATURE,
        )
    reporter.compositions({FINAL_COMPOSITION: final})
    return figures


def _join_hosts(state: dict[str, Any], world: distributed.World) -> None:
    """Every host starts where the leader does, with its weights, and draws its own batches."""
    epoch = float(state["epoch"])
    epochs = distributed.average({"epoch": epoch, "squared": epoch**2}, world)
    if epochs["squared"] != epochs["epoch"] ** 2:  # equal only when every host's epoch is the same
        raise ValueError(
            "the hosts resumed from different checkpoints: SageMaker gives every host the job's "
            "checkpoint folder, so each must hold the same checkpoint.pt"
        )
    distributed.same_weights(state["generator"], world)
    distributed.same_weights(state["critic"], world)
    if not world.leader:  # the leader keeps the job's own draws (and a single host's result)
        state["rng"].manual_seed(int(state["rng"].initial_seed()) + world.rank)


# --- the entry point -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for spec in HYPERPARAMETERS:
        # strings, as SageMaker passes them; Hyperparameters.parse checks them
        parser.add_argument(
            f"--{spec.name}",
            default=None,
            help=f"{spec.help} (default {spec.default}, range {spec.range_text()})",
        )
    parser.add_argument(
        "--checkpoint-dir",
        default=None,
        help="default $OPENCOMPOSER_CHECKPOINT_DIR, else <parent of SM_MODEL_DIR>/checkpoints",
    )
    parser.add_argument(
        f"--{TAGS_HYPERPARAMETER}", default=None, help='filtering tags, a JSON list (\'["mode:minor"]\')'
    )
    parser.add_argument("--dry-run", action="store_true", help="one epoch of 2 steps on a few chorales")
    parser.add_argument("mode", nargs="?", help=argparse.SUPPRESS)  # SageMaker may append "train"
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # SageMaker's toolkit passes every hyperparameter; ours are above
        log.info("ignoring arguments %s", unknown)
    return args


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    environ = os.environ if environ is None else environ
    args = parse_args(argv)
    paths = Paths.from_env(environ, args.checkpoint_dir)
    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    world = distributed.ALONE
    try:  # from the handler on: a SIGTERM anywhere below is a stop, never a traceback
        torch.set_num_threads(usable_cpus())
        hp = read_hyperparameters(args, environ)
        device = pick_device(environ)  # a job without the GPU it asked for fails now
        melody_midi = find_melody(paths.melody)
        if melody_midi is not None:
            from gan import midi

            try:
                midi.read_melody(melody_midi)  # a bad melody fails now, not after the training
            except midi.MidiError as e:
                raise ValueError(f"the job's melody cannot be used: {e}") from e
        splits = load_dataset(paths.training, paths.dataset, read_tags(args, environ))
        world = distributed.from_env(environ)
        use(device)
        # Only the leader writes the job's progress and files (gan.distributed).
        reporter = Reporter.from_env(paths.output, environ) if world.leader else Reporter([])
        distributed.start(world, device)
        if args.dry_run:
            hp = replace(hp, epochs=1)
            splits = gan_data.Splits(splits.train[:8], splits.validation[:2], splits.test[:2])
            figures = train(
                hp, paths, reporter, melody_midi, splits, steps_per_epoch=2, world=world, device=device
            )
        else:
            figures = train(hp, paths, reporter, melody_midi, splits, world=world, device=device)
        log.info("done: %s", json.dumps({k: round(v, 4) for k, v in figures.items()}))
        return 0
    except Stopped:
        log.warning("stopped; the last checkpoint is in %s", paths.checkpoints)
        return STOP_EXIT_CODE
    except Exception as e:
        reason = f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e)
        log.exception("training failed: %s", reason)
        paths.failure.parent.mkdir(parents=True, exist_ok=True)
        # SageMaker keeps only the start of the file as the job's FailureReason.
        paths.failure.write_text(reason[: FAILURE_REASON_MAX - 1] + "\n")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        distributed.finish(world)


if __name__ == "__main__":
    # The image's ENTRYPOINT: `train` (SageMaker's argument) reads SageMaker's files first.
    from gan.entrypoint import main as entry

    distributed.end_process(entry(train_main=main))
