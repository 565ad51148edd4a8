"""`opencomposer plot`: a job's learning curves as one PNG (matplotlib, the Agg backend).

From `GET /jobs/{id}/metrics` (`{epochs: [{epoch, ...}], reference: {...}}`), one panel each:
the generator's and the critic's loss, the Wasserstein estimate (when the training reports it),
the similarity index, and the music metrics, each beside Bach's own value (`reference`) as a
dashed line. A metric no epoch reports has no panel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Panel:
    title: str
    series: tuple[tuple[str, str], ...]  # (metric key, legend label)
    reference: str | None = None  # the key of Bach's value, drawn dashed


LOSSES = Panel("losses", (("generator_loss", "generator"), ("critic_loss", "critic")))
WASSERSTEIN = Panel("Wasserstein estimate (critic: real − fake)", (("wasserstein", "estimate"),))
SIMILARITY = Panel("similarity index (1 = Bach)", (("similarity", "similarity"),), "similarity")
MUSIC = (
    ("in_key_ratio", "notes in key"),
    ("consonance", "consonant beats"),
    ("voice_crossing", "voice crossing"),
    ("parallel_fifths_octaves", "parallel fifths/octaves"),
    ("pitch_classes_per_bar", "pitch classes per bar"),
    ("mean_note_length", "mean note length"),
)
COLUMNS = 3


def _reports(epochs: Sequence[Mapping[str, Any]], key: str) -> bool:
    return any(_value(epoch.get(key)) is not None for epoch in epochs)


def _value(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def panels(metrics: Mapping[str, Any]) -> list[Panel]:
    """The panels the figure of `metrics` has, in order."""
    epochs = metrics.get("epochs") or []
    chosen = []
    for panel in (LOSSES, WASSERSTEIN, SIMILARITY):
        if any(_reports(epochs, key) for key, _ in panel.series):
            chosen.append(panel)
    for key, title in MUSIC:
        if _reports(epochs, key):
            chosen.append(Panel(title, ((key, "this model"),), key))
    return chosen


def plot_metrics(metrics: Mapping[str, Any], path: Path | str, title: str | None = None) -> Path:
    """Draw `metrics` (the API's answer) into the PNG `path`, creating its folder."""
    drawn = figure(metrics, title)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    drawn.savefig(target, format="png", dpi=110)
    return target


def figure(metrics: Mapping[str, Any], title: str | None = None) -> Any:
    """The matplotlib `Figure` of `metrics`: one axes per panel (`panels`)."""
    epochs = sorted(metrics.get("epochs") or [], key=lambda e: e.get("epoch", 0))
    chosen = panels(metrics)
    if not epochs or not chosen:
        raise ValueError(f"job {metrics.get('job_id', '?')} has no per-epoch metrics yet")
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    reference = metrics.get("reference") or {}
    rows = math.ceil(len(chosen) / COLUMNS)
    columns = min(COLUMNS, len(chosen))
    drawn = Figure(figsize=(4.2 * columns, 3.0 * rows), layout="constrained")
    grid = drawn.add_gridspec(rows, columns)
    for index, panel in enumerate(chosen):
        axes = drawn.add_subplot(grid[index // columns, index % columns])
        for key, label in panel.series:
            points = [(e.get("epoch"), _value(e.get(key))) for e in epochs]
            xs = [x for x, y in points if y is not None]
            ys = [y for x, y in points if y is not None]
            if ys:
                axes.plot(xs, ys, marker="o" if len(ys) < 30 else None, markersize=3, label=label)
        bach = _value(reference.get(panel.reference)) if panel.reference else None
        if bach is not None:
            axes.axhline(bach, linestyle="--", color="0.35", linewidth=1.2, label=f"Bach {bach:.3g}")
        axes.set_title(panel.title, fontsize=10)
        axes.set_xlabel("epoch", fontsize=8)
        axes.tick_params(labelsize=8)
        axes.grid(True, alpha=0.3)
        if len(panel.series) > 1 or bach is not None:
            axes.legend(fontsize=7)
    drawn.suptitle(title or f"job {metrics.get('job_id', '')}", fontsize=11)
    return drawn
