"""Music metrics: their cost per epoch, Bach's own values, and the baselines a model must beat.

- cost: `metrics.evaluate(validation, reference=validation)`, what training runs every epoch,
  timed over repeated runs (median).
- Bach's values over all chorales, and over the 4/4 ones (most of them).
- on the test split's melodies: the similarity index and chord agreement of two baselines,
  the tonic triad held under the melody and random in-range notes, one per beat.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from gan import data, metrics

REPEATS = 20
SHOWN = (
    "in_key_ratio",
    "consonance",
    "voice_crossing",
    "parallel_fifths_octaves",
    "empty_bar_rate",
    "pitch_classes_per_bar",
    "single_note_rate",
    "mean_note_length",
)
RANGES = ((53, 74), (48, 69), (36, 64))  # Bach's alto, tenor and bass, over the whole corpus


def random_notes(piece: data.Chorale, rng: np.random.Generator) -> data.Chorale:
    pitches, onsets = piece.pitches.copy(), piece.onsets.copy()
    steps = pitches.shape[1]
    for voice, (low, high) in zip((1, 2, 3), RANGES, strict=True):
        pitches[voice] = np.repeat(rng.integers(low, high + 1, size=-(-steps // 4)), 4)[:steps]
        onsets[voice] = np.arange(steps) % 4 == 0
    return data.Chorale(piece.name, pitches, onsets, piece.steps_per_bar)


def main() -> dict:
    splits = data.load_chorales()
    everything = splits.train + splits.validation + splits.test
    timings = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        metrics.evaluate(splits.validation, reference=splits.validation)
        timings.append(time.perf_counter() - started)
    epoch_ms = statistics.median(timings) * 1000
    print(
        f"metrics of {len(splits.validation)} validation chorales with similarity: {epoch_ms:.1f} ms (median)"
    )

    bach_all = metrics.describe(everything)
    bach_44 = metrics.describe([c for c in everything if c.steps_per_bar == 16])
    print(f"{'metric':26s} {'all chorales':>12s} {'4/4 only':>10s}")
    for key in SHOWN:
        print(f"{key:26s} {bach_all[key]:12.4f} {bach_44[key]:10.4f}")

    test = splits.test
    triad = metrics.evaluate([metrics.tonic_triad(c) for c in test], reference=test)
    noise = metrics.evaluate([random_notes(c, np.random.default_rng(0)) for c in test], reference=test)
    print(f"test split ({len(test)} melodies): similarity / chord agreement with Bach")
    print(f"  tonic triad   {triad['similarity']:.3f} / {triad['chord_agreement']:.3f}")
    print(f"  random notes  {noise['similarity']:.3f} / {noise['chord_agreement']:.3f}")
    return {
        "evaluate_validation_ms": round(epoch_ms, 2),
        "validation_pieces": len(splits.validation),
        "bach_all": {k: round(bach_all[k], 4) for k in SHOWN},
        "bach_four_four": {k: round(bach_44[k], 4) for k in SHOWN},
        "test_tonic_triad": {
            "similarity": round(triad["similarity"], 4),
            "chord_agreement": round(triad["chord_agreement"], 4),
            "consonance": round(triad["consonance"], 4),
        },
        "test_random_notes": {
            "similarity": round(noise["similarity"], 4),
            "chord_agreement": round(noise["chord_agreement"], 4),
            "consonance": round(noise["consonance"], 4),
        },
    }


if __name__ == "__main__":
    main()
