"""Training benchmarks: quality and wall time of the default training, throughput against the
DeepComposer lab's sizes, achieved GFLOP/s against this machine's matmul peak, generation latency.

    python -m bench training                       # (a)-(e), on the CPU (via bench/__main__.py)
    python -m bench.bench_training --device cuda --only throughput   # bench/gpu.sh
    python -m bench.bench_training --device cuda --only budget --budget 120   # bench/gpu.sh
    python -m bench.bench_training --device cpu --only budget --budget 10     # the same, briefly

(a) quality: the default hyperparameters train from scratch (dataset cached), then accompany
    the test split's melodies; every metric beside Bach's own values on the same melodies, a
    tonic-triad baseline, and the bar each must reach.
(b) the wall time of that training, per-epoch validation included (target: 5 minutes).
(c) training iterations per second (update_ratio critic updates + one generator update, batch
    64): the training's own `gan.train.train_step` on synthetic batches of the training
    batches' shape, and a straightforward PyTorch version of the lab's model at its sizes
    (`bench/lab_model.py`), both measured here in the same run. The lab's iteration is slow, so
    it is timed as one critic step and one generator step after a small warm-up, and scaled to
    5 + 1 steps.
(d) achieved GFLOP/s of that training step (FLOPs counted by torch's FlopCounterMode) against
    a matmul peak measured in the same run, for each `model_size` preset: on CUDA in the
    training's own precision (bfloat16 autocast where the GPU has it) against a matmul peak in
    that same type; on the CPU in float32.
(e) generation latency: a 16-bar melody accompanied (MIDI in, MIDI out), model loaded.
(f) each `model_size` trained for the same wall time (`--budget` seconds of training, the
    cosine schedule fitted to the epochs that fit, from a rate measured first), then the
    validation metrics and how many of the quality bars each reaches: what a larger model buys
    in a fixed time on this device.
(g) on CUDA: the mixed-precision training's losses against float32's over the same steps (the
    check tests/unit/test_gan_device.py makes with CPU autocast).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from bench.lab_model import lab_steps
from gan import data as gan_data
from gan import metrics
from gan.cpus import usable_cpus
from gan.device import Precision, use
from gan.encoding import Batch
from gan.generate import accompany, harmonise, load_generator
from gan.model import MODEL_SIZES, Generator, ModelConfig
from gan.reporter import LocalSink, Reporter
from gan.train import (
    MODEL_FILE,
    STEPS_PER_EPOCH,
    Hyperparameters,
    Paths,
    new_state,
    train,
    train_epoch,
    train_step,
    validate,
)

TIME_TARGET_S = 300
GENERATION_TARGET_MS = 100
# The quality bar: metric → (test, description); values are the pooled lower voices.
BAR: dict[str, tuple[Callable[[float, dict[str, float]], bool], str]] = {
    "single_note_rate": (lambda v, b: v >= 0.99, ">= 0.99"),
    "in_key_ratio": (lambda v, b: v >= 0.90, ">= 0.90"),
    "consonance": (lambda v, b: v >= 0.85, ">= 0.85"),
    "voice_crossing": (lambda v, b: v <= 0.05, "<= 0.05"),
    "parallel_fifths_octaves": (lambda v, b: v <= 0.03, "<= 0.03"),
    "empty_bar_rate": (lambda v, b: v <= 0.02, "<= 0.02"),
    "pitch_classes_per_bar": (lambda v, b: abs(v - b["pitch_classes_per_bar"]) <= 0.5, "Bach's ± 0.5"),
}
SHOWN = [*BAR, "polyphony", "mean_note_length", "chord_agreement", "similarity"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# --- (a), (b): the default training and its quality ----------------------------------------------


def train_default(splits: gan_data.Splits) -> tuple[Generator, Hyperparameters, float]:
    """The default hyperparameters trained from scratch on `splits` in a scratch directory →
    the generator as its model file loads, the hyperparameters and the wall seconds (also
    bench/bench_variety.py's model)."""
    hp = Hyperparameters()
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths.from_env({"SM_MODEL_DIR": f"{tmp}/model", "SM_OUTPUT_DATA_DIR": f"{tmp}/output/data"})
        started = time.perf_counter()
        train(hp, paths, Reporter([LocalSink(paths.output)]), None, splits)
        seconds = time.perf_counter() - started
        generator = load_generator(paths.model / MODEL_FILE)
    return generator, hp, seconds


def quality(splits: gan_data.Splits) -> tuple[dict[str, object], Generator]:
    generator, hp, seconds = train_default(splits)
    print(f"(b) default training {hp}: {seconds:.1f} s wall (target {TIME_TARGET_S} s)")
    test = splits.test
    ours = [
        gan_data.Chorale(
            c.name,
            *harmonise(generator, c.pitches[0], c.onsets[0], c.steps_per_bar, hp.seed),
            c.steps_per_bar,
        )
        for c in test
    ]
    triad = [metrics.tonic_triad(c) for c in test]
    rows = {
        "ours": metrics.evaluate(ours, reference=test),
        "bach": metrics.evaluate(test, reference=test),
        "tonic_triad": metrics.evaluate(triad, reference=test),
    }
    passed = {m: bool(check(rows["ours"][m], rows["bach"])) for m, (check, _) in BAR.items()}
    print(f"(a) quality on the {len(test)} test melodies (lower voices pooled):")
    print(f"    {'metric':26s} {'ours':>8s} {'Bach':>8s} {'tonic':>8s}  bar")
    for m in SHOWN:
        bar = f"{BAR[m][1]} {'PASS' if passed[m] else 'FAIL'}" if m in BAR else ""
        print(
            f"    {m:26s} {rows['ours'][m]:8.3f} {rows['bach'][m]:8.3f} {rows['tonic_triad'][m]:8.3f}  {bar}"
        )
    return {
        "hyperparameters": vars(hp),
        "train_seconds": round(seconds, 1),
        "train_within_target": seconds <= TIME_TARGET_S,
        "test_melodies": len(test),
        "metrics": {name: {m: round(v, 4) for m, v in row.items()} for name, row in rows.items()},
        "bar_passed": passed,
        "all_passed": all(passed.values()),
    }, generator


# --- (c), (d): throughput ----------------------------------------------------------------------


def synthetic_batch(config: ModelConfig, batch_size: int, device: torch.device) -> Batch:
    """A batch of the training batches' shape and form (one-hot voices), for timing without data."""
    g = torch.Generator().manual_seed(0)
    classes = torch.randint(config.classes, (batch_size, 4, config.window), generator=g)
    onsets = torch.rand(batch_size, 4, config.window, generator=g) < 0.3
    hot = F.one_hot(classes, config.classes).movedim(-1, -2).float()
    voices = torch.cat([hot, onsets.float().unsqueeze(2)], 2).flatten(1, 2)
    meter = torch.zeros(batch_size, config.meter_features, config.window)
    width = config.voice_channels
    return Batch(
        condition=torch.cat([voices[:, :width], meter], 1).to(device),
        classes=classes[:, 1:].to(device),
        onsets=onsets[:, 1:].float().to(device),
        voices=voices[:, width:].to(device),
    )


class SyntheticBatches:
    """The same synthetic batch on every draw, where the training draws from `gan.encoding.Windows`:
    what is timed is the training step, not the sampling."""

    def __init__(self, config: ModelConfig, batch_size: int, device: torch.device):
        self.batch = synthetic_batch(config, batch_size, device)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        assert batch_size == self.batch.classes.size(0)
        return self.batch


def our_step(
    hp: Hyperparameters, device: torch.device, config: ModelConfig | None = None
) -> Callable[[], object]:
    """The training's own `train_step` on `device`, in the training's precision there, on
    synthetic batches."""
    state = new_state(hp, config or ModelConfig(), device)
    batches = SyntheticBatches(state["generator"].config, hp.batch_size, device)
    return lambda: train_step(state, batches, hp, hp.learning_rate)


class _GlobalOnly:
    """Stands in for FlopCounterMode's per-module tracker, whose backward hooks torch refuses
    inside autograd.grad (the gradient penalty): every FLOP is counted under "Global"."""

    parents = frozenset({"Global"})

    def __enter__(self) -> None: ...

    def __exit__(self, *args: object) -> None: ...


def count_flops(fn: Callable[[], object]) -> int:
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()  # type: ignore[assignment]
    with counter:
        fn()
    return counter.get_total_flops()


def _seconds(fn: Callable[[], object], device: torch.device, repeat: int) -> float:
    _sync(device)
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    _sync(device)
    return (time.perf_counter() - started) / repeat


def matmul_peak(device: torch.device, n: int = 2048, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of a square matmul in `dtype`, the best of a few (on a GPU, larger: 8192)."""
    n = n if device.type == "cpu" else 8192
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up
    best = min(_seconds(lambda: a @ b, device, 3 if device.type == "cpu" else 50) for _ in range(3))
    return 2 * n**3 / best / 1e9


def size_throughput(device: torch.device, size: str) -> dict[str, object]:
    """(c), (d) for one `model_size`: iterations/s of the default hyperparameters' step, and its
    achieved GFLOP/s against the matmul peak in the step's own precision on `device`."""
    hp = Hyperparameters(model_size=size)
    step = our_step(hp, device, ModelConfig.preset(size))
    step()  # warm-up (allocations, cuDNN choices)
    step()
    seconds = _seconds(step, device, 3 if device.type == "cpu" else 20)
    flops = count_flops(step)
    precision = Precision.for_device(device)
    peak = matmul_peak(device, dtype=precision.dtype or torch.float32)
    achieved = flops / seconds / 1e9
    print(
        f"(c/d) {size} model on {device_name(device)} ({precision.name}): {1 / seconds:.2f} iterations/s, "
        f"{flops / 1e9:.1f} GFLOP each, {achieved:.0f} GFLOP/s = {100 * achieved / peak:.1f} % of the "
        f"{peak:.0f} GFLOP/s matmul peak in {str(precision.dtype or torch.float32).removeprefix('torch.')}"
    )
    return {
        "precision": precision.name,
        "iterations_per_s": round(1 / seconds, 3),
        "gflop_per_iteration": round(flops / 1e9, 2),
        "achieved_gflops": round(achieved, 1),
        "matmul_peak_gflops": round(peak, 1),
        "share_of_peak": round(achieved / peak, 4),
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({usable_cpus()} threads)"


def throughput(device: torch.device) -> dict[str, object]:
    hp = Hyperparameters()
    step = our_step(hp, device)
    step()  # warm-up (allocations, cuDNN choices)
    ours = _seconds(step, device, 3 if device.type == "cpu" else 20)
    flops = count_flops(step)

    lab_batch, lab_critic_steps = 64, 5
    small_critic, small_generator = lab_steps(8, device)  # warm-up at a small batch
    small_critic()
    small_generator()
    critic_step, generator_step = lab_steps(lab_batch, device)
    repeat = 1 if device.type == "cpu" else 5
    if device.type != "cpu":
        critic_step()
        generator_step()
    lab = lab_critic_steps * _seconds(critic_step, device, repeat) + _seconds(generator_step, device, repeat)

    peak = matmul_peak(device)
    achieved = flops / ours / 1e9
    print(
        f"(c) training iterations/s on {device.type} ({hp.update_ratio} critic + 1 generator updates, "
        f"batch {hp.batch_size}): ours {1 / ours:.2f} ({ours:.3f} s), lab-sized {1 / lab:.4f} "
        f"({lab:.3f} s, timed as one critic and one generator step scaled to 5 + 1): {lab / ours:.0f}x"
    )
    print(
        f"(d) our iteration: {flops / 1e9:.1f} GFLOP, {achieved:.1f} GFLOP/s achieved vs "
        f"{peak:.1f} GFLOP/s matmul peak ({100 * achieved / peak:.0f} %)"
    )
    return {
        "device": device.type,
        "ours_iterations_per_s": round(1 / ours, 3),
        "lab_iterations_per_s": round(1 / lab, 5),
        "lab_seconds_per_iteration": round(lab, 2),
        "speedup": round(lab / ours, 1),
        "our_gflop_per_iteration": round(flops / 1e9, 2),
        "achieved_gflops": round(achieved, 1),
        "matmul_peak_gflops": round(peak, 1),
        "share_of_peak": round(achieved / peak, 3),
        "sizes": {size: size_throughput(device, size) for size in MODEL_SIZES},
    }


# --- (e): generation latency -------------------------------------------------------------------


def generation_latency(generator: Generator, splits: gan_data.Splits) -> dict[str, object]:
    from gan import midi  # here: the GPU throughput run needs no MIDI library

    piece = next(c for c in splits.test if c.steps >= 16 * c.steps_per_bar)
    steps = 16 * piece.steps_per_bar
    melody = midi.write_chorale(
        piece.pitches[:1, :steps], piece.onsets[:1, :steps], tempo_bpm=100, steps_per_bar=piece.steps_per_bar
    )
    accompany(generator, melody, seed=0)  # warm-up
    times = []
    for seed in range(20):
        started = time.perf_counter()
        accompany(generator, melody, seed=seed)
        times.append(time.perf_counter() - started)
    median = statistics.median(times) * 1000
    print(
        f"(e) a 16-bar melody ({piece.name}) accompanied, MIDI in to MIDI out, model loaded: "
        f"median {median:.1f} ms, max {max(times) * 1000:.1f} ms of 20 (target {GENERATION_TARGET_MS} ms)"
    )
    return {
        "median_ms": round(median, 2),
        "max_ms": round(max(times) * 1000, 2),
        "within_target": median <= GENERATION_TARGET_MS,
    }


# --- (f), (g): the model sizes in the same wall time; mixed precision against float32 ----------


def _bars_met(figures: dict[str, float], reference: dict[str, float]) -> list[str]:
    return [m for m, (check, _) in BAR.items() if check(figures[m], reference)]


def trained_for(
    seconds: float, size: str, splits: gan_data.Splits, device: torch.device
) -> dict[str, object]:
    """`size` trained for about `seconds` of training steps with the default hyperparameters, the
    cosine schedule fitted to the epochs that fit; then the validation metrics."""
    from gan.encoding import Windows

    config = ModelConfig.preset(size)
    windows = Windows(splits.train, config)
    probe_hp = Hyperparameters(model_size=size)
    probe = new_state(probe_hp, config, device)
    probes = 1 if device.type == "cpu" else 5
    train_step(probe, windows, probe_hp, probe_hp.learning_rate)  # warm-up
    _sync(device)
    started = time.perf_counter()
    for _ in range(probes):
        train_step(probe, windows, probe_hp, probe_hp.learning_rate)
    _sync(device)
    rate = probes / (time.perf_counter() - started)
    # Whole epochs where the budget holds one; a budget shorter than an epoch (a quick check on
    # a slow CPU) trains that many iterations as one epoch.
    iterations = max(2, int(seconds * rate))
    epochs, steps = max(1, iterations // STEPS_PER_EPOCH), min(iterations, STEPS_PER_EPOCH)
    hp = Hyperparameters(model_size=size, epochs=epochs)
    state = new_state(hp, config, device)
    _sync(device)
    started = time.perf_counter()
    while state["epoch"] < epochs:
        train_epoch(state, windows, hp, steps)
        state["epoch"] += 1
    _sync(device)
    wall = time.perf_counter() - started
    figures = validate(state["generator"], splits.validation, hp.seed)
    reference = metrics.evaluate(splits.validation, reference=splits.validation)
    met = _bars_met(figures, reference)
    print(
        f"(f) {size} model, {epochs} epochs ({epochs * steps} iterations) in {wall:.1f} s of "
        f"training on {device_name(device)}: similarity {figures['similarity']:.3f}, consonance "
        f"{figures['consonance']:.3f}, in_key {figures['in_key_ratio']:.3f}; {len(met)}/{len(BAR)} bars met"
    )
    return {
        "budget_s": seconds,
        "epochs": epochs,
        "train_seconds": round(wall, 1),
        "iterations": epochs * steps,
        "iterations_per_s": round(epochs * steps / wall, 3),
        "validation": {m: round(v, 4) for m, v in figures.items()},
        "bars_met": met,
    }


def precision_check(device: torch.device, steps: int = 5) -> dict[str, object]:
    """The training's mixed precision on `device` against float32, over the same steps from the
    same seed: the largest difference of each loss, beside the loss's own size."""
    precision = Precision.for_device(device)
    hp = Hyperparameters(batch_size=32, update_ratio=2, seed=3)
    runs = []
    for chosen in (Precision(), precision):
        state = new_state(hp, ModelConfig(), device)
        state["precision"] = chosen
        batches = SyntheticBatches(state["generator"].config, hp.batch_size, device)
        runs.append([{k: v.item() for k, v in train_step(state, batches, hp, hp.learning_rate).items()}
                     for _ in range(steps)])
    worst = {
        name: max(abs(a[name] - b[name]) / (abs(a[name]) + 0.05) for a, b in zip(*runs, strict=True))
        for name in runs[0][0]
    }
    print(f"(g) {precision.name} against float32 over {steps} steps on {device_name(device)}: largest "
          "difference per loss, relative (+0.05): " + ", ".join(f"{k} {v:.3%}" for k, v in worst.items())
          + " (tests/unit/test_gan_device.py allows 2 %)")
    return {"precision": precision.name, "steps": steps, "largest_relative_difference": worst,
            "within_2_percent": all(v <= 0.02 for v in worst.values())}


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--only", choices=["throughput", "quality", "budget"], default=None,
                        help="one part; without it (a)-(e), with throughput's parts for both sizes")
    parser.add_argument("--budget", type=float, default=120.0,
                        help="(f): seconds of training for each model size (default 120)")
    args = parser.parse_args([] if argv is None else argv)
    device = torch.device(args.device)
    use(device)
    torch.set_num_threads(usable_cpus())
    results: dict[str, object] = {"device": device_name(device)}
    if args.only == "budget":
        splits = gan_data.load_chorales()
        results["same_wall_time"] = {
            size: trained_for(args.budget, size, splits, device) for size in MODEL_SIZES
        }
        if device.type == "cuda":
            results["mixed_precision"] = precision_check(device)
        return results
    if args.only in (None, "throughput"):
        results["throughput"] = throughput(device)
    if args.only in (None, "quality"):
        if device.type != "cpu":
            raise SystemExit("the quality part runs on the CPU only (the target is two CPU cores)")
        splits = gan_data.load_chorales()
        figures, generator = quality(splits)
        results["quality"] = figures
        results["generation"] = generation_latency(generator, splits)
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(main(sys.argv[1:]), indent=2, default=str))
