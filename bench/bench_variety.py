"""Variety benchmark: do two seeds give two accompaniments, and does each still meet the bar?

    python -m bench variety           # via bench/__main__.py
    python -m bench.bench_variety     # the same, printing the dict as JSON at the end

The default hyperparameters train from scratch (bench_training.train_default, dataset cached),
then the test split's melodies are accompanied at temperature 0 (the likeliest line) and at
contracts.compositions.DEFAULT_TEMPERATURE, with seeds 0-3:
(a) variety: the share of beats where two seeds' lower voices (alto, tenor, bass) sound a
    different pitch-class set, for seeds 0 and 1 and the mean over every pair of seeds 0-3
    (target: at least 25 % at the default temperature). A beat counts where either seed sounds
    a lower voice.
(b) quality: every metric of bench_training.BAR for seeds 0, 1 and 2 alone, against its bar
    (Bach's values on the same melodies where the bar is relative), pass or fail.
(c) repeatability: the same seed and temperature decoded twice give the same voices.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import torch

from bench.bench_training import BAR, train_default
from contracts.compositions import DEFAULT_TEMPERATURE
from gan import data as gan_data
from gan import metrics
from gan.cpus import usable_cpus
from gan.generate import harmonise
from gan.model import Generator

VARIETY_TARGET = 0.25
SEEDS = (0, 1, 2, 3)  # every pair of these for the mean variety
BAR_SEEDS = (0, 1, 2)  # each measured against every bar alone
TEMPERATURES = (0.0, DEFAULT_TEMPERATURE)
SHOWN = ("mean_note_length", "chord_agreement", "similarity")


def accompany_split(
    generator: Generator, chorales: Sequence[gan_data.Chorale], seed: int, temperature: float
) -> list[gan_data.Chorale]:
    return [
        gan_data.Chorale(
            c.name,
            *harmonise(generator, c.pitches[0], c.onsets[0], c.steps_per_bar, seed, temperature=temperature),
            c.steps_per_bar,
        )
        for c in chorales
    ]


def _chord_masks(piece: gan_data.Chorale) -> np.ndarray:
    """The lower voices' pitch-class set on each beat (the piece is bar-aligned from step 0), as
    a 12-bit mask per beat; 0 where no lower voice sounds."""
    chords = np.asarray(piece.pitches)[1:, :: metrics.BEAT_STEPS].astype(np.int64)  # 3 x beats
    bits = np.where(chords > 0, np.left_shift(1, chords % 12), 0)
    return np.bitwise_or.reduce(bits, axis=0)


def beats_differing(a: Sequence[gan_data.Chorale], b: Sequence[gan_data.Chorale]) -> float:
    """Share of beats, over two accompaniments of the same melodies, where the lower voices'
    pitch-class sets differ (beats where either sounds a lower voice)."""
    differ = counted = 0
    for x, y in zip(a, b, strict=True):
        mx, my = _chord_masks(x), _chord_masks(y)
        sounding = (mx > 0) | (my > 0)
        differ += int(np.sum((mx != my) & sounding))
        counted += int(np.sum(sounding))
    return differ / counted if counted else float("nan")


def measure(generator: Generator, test: Sequence[gan_data.Chorale], temperature: float) -> dict[str, object]:
    pieces = {seed: accompany_split(generator, test, seed, temperature) for seed in SEEDS}
    pairs = {f"{a}-{b}": beats_differing(pieces[a], pieces[b]) for a, b in combinations(SEEDS, 2)}
    bach = metrics.evaluate(test, reference=test)
    per_seed: dict[str, object] = {}
    for seed in BAR_SEEDS:
        values = metrics.evaluate(pieces[seed], reference=test)
        passed = {m: bool(check(values[m], bach)) for m, (check, _) in BAR.items()}
        per_seed[str(seed)] = {
            "metrics": {m: round(values[m], 4) for m in (*BAR, *SHOWN)},
            "bar_passed": passed,
            "all_passed": all(passed.values()),
        }
    again = accompany_split(generator, test[:10], 0, temperature)
    repeatable = all(
        np.array_equal(x.pitches, y.pitches) and np.array_equal(x.onsets, y.onsets)
        for x, y in zip(again, pieces[0][:10], strict=True)
    )
    variety = pairs["0-1"]
    mean_variety = float(np.mean(list(pairs.values())))

    print(f"temperature {temperature}:")
    print(
        f"  (a) beats with a different lower-voice chord: seeds 0/1 {100 * variety:.1f} %, mean over "
        f"{len(pairs)} pairs of seeds {SEEDS[0]}-{SEEDS[-1]} {100 * mean_variety:.1f} % "
        f"(min {100 * min(pairs.values()):.1f} %; target >= {100 * VARIETY_TARGET:.0f} %: "
        f"{'PASS' if variety >= VARIETY_TARGET else 'FAIL'})"
    )
    print(
        f"  (b) {'metric':26s} "
        + " ".join(f"{'seed ' + str(s):>14s}" for s in BAR_SEEDS)
        + f" {'Bach':>8s}  bar"
    )
    for m in (*BAR, *SHOWN):
        cells = []
        for seed in BAR_SEEDS:
            row = per_seed[str(seed)]
            value = row["metrics"][m]  # type: ignore[index]
            verdict = ("PASS" if row["bar_passed"][m] else "FAIL") if m in BAR else ""  # type: ignore[index]
            cells.append(f"{value:8.3f} {verdict:>5s}")
        bar = BAR[m][1] if m in BAR else ""
        print(f"      {m:26s} " + " ".join(cells) + f" {bach[m]:8.3f}  {bar}")
    print(f"  (c) the same seed and temperature twice give the same voices: {repeatable}")
    return {
        "beats_differing_0_1": round(variety, 4),
        "beats_differing_mean": round(mean_variety, 4),
        "beats_differing_pairs": {k: round(v, 4) for k, v in pairs.items()},
        "variety_passed": variety >= VARIETY_TARGET,
        "per_seed": per_seed,
        "all_bars_passed": all(row["all_passed"] for row in per_seed.values()),  # type: ignore[index]
        "repeatable": repeatable,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    torch.set_num_threads(usable_cpus())
    splits = gan_data.load_chorales()
    generator, hp, seconds = train_default(splits)
    print(f"default training {hp}: {seconds:.1f} s; {len(splits.test)} test melodies")
    results: dict[str, object] = {
        "train_seconds": round(seconds, 1),
        "test_melodies": len(splits.test),
        "default_temperature": DEFAULT_TEMPERATURE,
        "variety_target": VARIETY_TARGET,
    }
    for temperature in TEMPERATURES:
        results[f"temperature_{temperature}"] = measure(generator, splits.test, temperature)
    default = results[f"temperature_{DEFAULT_TEMPERATURE}"]
    results["passed"] = bool(
        default["variety_passed"] and default["all_bars_passed"] and default["repeatable"]  # type: ignore[index]
    )
    print(f"default temperature {DEFAULT_TEMPERATURE}: {'PASS' if results['passed'] else 'FAIL'}")
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(main(sys.argv[1:]), indent=2, default=str))
