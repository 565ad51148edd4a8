"""The dataset: Bach's four-part chorales as bar-aligned 16th-note voice lines, split by melody.

Source: the chorales bundled with music21 (offline). Each usable score becomes a `Chorale`:
soprano (the melody), alto, tenor, bass, each a line of pitches and onsets on a 16th-note grid
(see `gan.grid`), with pickups padded by rests in front so that every bar starts at a multiple
of `steps_per_bar`, and the last bar padded at the end. In 6 chorales whose repeated sections
do not add up to whole bars, a short rest after a section's closing bar restores the bar lines
(`bar_line_shifts`).

Skipped, each with a reason (`python -m gan.data` prints them): the keyboard prelude (no four
voices), the `.rntxt` analyses (not scores), scores whose voices cannot be told apart by part
name (five vocal parts), and scores that change time signature (a line has one bar length).
Off-grid notes (18 thirty-second notes, 3 grace notes) are sampled onto the grid as
`gan.grid.render_line` documents, so no chorale is lost to them.

The build is one music21 parse per file in a pool of two processes, reading tie types
directly instead of calling `stripTies(inPlace=False)` (half of a naive conversion's time;
`bench/bench_dataset.py` measures both). music21's parse itself is most of what is left. The
result is cached as one compressed npz whose name carries `FORMAT_VERSION`, so a changed builder
rebuilds instead of loading stale rolls.

One module although long: from a music21 score to the cached splits, every step makes or
reads the same `Chorale`, and the Dockerfile's `python -m gan.data` bakes the cache with it.

`python -m gan.data --index` writes `contracts/bach_index.json` (`contracts.datasets.
BACH_INDEX_FILE`): per cached chorale its computed tags, bars and training windows, as a built
dataset's index.json (`gan.datasets`), for the API to count what a job's tags leave; a test
checks that the committed file is what this command writes.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contracts.datasets import BACH_INDEX_FILE

from .grid import STEPS_PER_QUARTER, render_line

VOICES = ("soprano", "alto", "tenor", "bass")
# Bump when the builder's output changes: the cache file name carries it.
FORMAT_VERSION = 3
CACHE_DIR_ENV = "OPENCOMPOSER_DATA_DIR"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "opencomposer"
# The machine this must build on has two cores; more processes only add start-up cost.
BUILD_WORKERS = 2
SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn")
# Shares of melodies held out; the rest trains.
VALIDATION_SHARE = 0.1
TEST_SHARE = 0.1


@dataclass
class Chorale:
    name: str  # e.g. "bwv26.6" (corpus) or the file name (user MIDI)
    pitches: np.ndarray  # uint8 [4, T]: MIDI pitch sounding per voice (S, A, T, B) per 16th step, 0 = rest
    onsets: np.ndarray  # bool [4, T]: True where a note starts (keeps repeated notes distinct)
    steps_per_bar: int  # 16 in 4/4, 12 in 3/4 ...; T is a multiple of it; pickups padded in front

    @property
    def steps(self) -> int:
        return int(self.pitches.shape[1])

    @property
    def bars(self) -> int:
        return self.steps // self.steps_per_bar


@dataclass
class Splits:
    train: list[Chorale]
    validation: list[Chorale]
    test: list[Chorale]

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


class UnusableScore(ValueError):
    """A score that cannot become a four-voice chorale; the message says why."""


# --- assembling a chorale from four timed voices ---------------------------------------------


def assemble(
    name: str,
    voices: Sequence[Iterable[tuple[float, float, int, bool]]],
    steps_per_bar: int,
    pickup_steps: int = 0,
) -> Chorale:
    """Four voices of timed notes (start, end, pitch, continues_tie; in steps from the first
    note of the score) → a bar-aligned `Chorale`: `pickup_steps` of rest in front so the first
    full bar starts on a bar line, and rests at the end up to the next bar line."""
    if len(voices) != len(VOICES):
        raise UnusableScore(f"{name}: needs {len(VOICES)} voices, got {len(voices)}")
    shifted = [[(s + pickup_steps, e + pickup_steps, p, t) for s, e, p, t in v] for v in voices]
    end = max((e for v in shifted for _, e, _, _ in v), default=0)
    if end <= pickup_steps:
        raise UnusableScore(f"{name}: has no notes")
    n_steps = -(-round(end) // steps_per_bar) * steps_per_bar
    lines = [render_line(n_steps, v) for v in shifted]
    pitches = np.stack([p for p, _ in lines])
    onsets = np.stack([o for _, o in lines])
    return Chorale(name=name, pitches=pitches, onsets=onsets, steps_per_bar=steps_per_bar)


# --- music21 scores --------------------------------------------------------------------------


def _pick_voice_parts(score) -> list:
    """The four vocal parts: the only four parts, or the parts named Soprano/Alto/Tenor/Bass
    where a score has instrument parts too ("Bass Continuo" is the bass; "Continuo" is not)."""
    parts = list(score.parts)
    named: dict[str, list] = {voice: [] for voice in VOICES}
    for part in parts:
        words = (part.partName or part.id or "").lower().split()
        if words and words[0] in named:
            named[words[0]].append(part)
    if all(len(found) == 1 for found in named.values()):
        return [named[voice][0] for voice in VOICES]
    if len(parts) == len(VOICES) and not any(named.values()):
        return parts
    counts = ", ".join(f"{len(found)} {voice}" for voice, found in named.items())
    raise UnusableScore(f"cannot pick one part per voice ({len(parts)} parts; named: {counts})")


def _steps(quarter_length) -> float:
    return float(quarter_length) * STEPS_PER_QUARTER


def _timed_notes(part) -> list[tuple[float, float, int, bool]]:
    """(start, end, pitch, continues_tie) in steps; tie types read directly (no stripTies)."""
    notes = []
    for element in part.flatten().notes:
        start = _steps(element.offset)
        end = start + _steps(element.quarterLength)
        # A voice holds no chords in this corpus; if one did, its top note is the line.
        pitch = max(p.midi for p in element.pitches)
        tied = element.tie is not None and element.tie.type in ("stop", "continue")
        notes.append((start, end, pitch, tied))
    return notes


def bar_line_shifts(starts: Sequence[float], lengths: Sequence[float], steps_per_bar: int) -> list[float]:
    """How far to move each measure (in steps) so that bar lines fall every `steps_per_bar`.

    A full measure starts on a bar line. An incomplete measure is a pickup, which ends on a bar
    line, when it opens the piece or does not start on a bar line; otherwise it is a section's
    closing bar and stays where it falls. Shifts only grow, so the only change is rest added in
    front and, in the 6 chorales whose sections do not add up to whole bars, a short rest after
    a closing bar.
    """
    shifts: list[float] = []
    shift = 0.0
    for i, (start, length) in enumerate(zip(starts, lengths, strict=True)):
        at = round(start + shift)
        if abs(length - steps_per_bar) < 1e-6:
            shift += -at % steps_per_bar
        elif i == 0 or at % steps_per_bar:
            shift += -round(start + length + shift) % steps_per_bar
        shifts.append(shift)
    return shifts


def chorale_from_score(name: str, score) -> Chorale:
    """A parsed music21 score → `Chorale`, or `UnusableScore` saying why not."""
    from music21 import meter, stream

    parts = _pick_voice_parts(score)
    signatures = {ts.ratioString: ts for ts in parts[0].recurse().getElementsByClass(meter.TimeSignature)}
    if len(signatures) != 1:
        raise UnusableScore(f"changes time signature ({', '.join(sorted(signatures)) or 'none'})")
    (signature,) = signatures.values()
    bar = _steps(signature.barDuration.quarterLength)
    if bar != int(bar):
        raise UnusableScore(f"a {signature.ratioString} bar is not a whole number of 16ths")
    steps_per_bar = int(bar)
    measures = list(parts[0].getElementsByClass(stream.Measure))
    starts = [_steps(m.offset) for m in measures]
    lengths = [_steps(m.duration.quarterLength) for m in measures]
    shifts = np.array(bar_line_shifts(starts, lengths, steps_per_bar), dtype=float)
    voices = []
    for part in parts:
        notes = _timed_notes(part)
        # Every voice moves with the soprano's measure that holds the note.
        index = np.searchsorted(starts, [s + 1e-6 for s, _, _, _ in notes], side="right") - 1
        move = shifts[np.clip(index, 0, None)] if len(shifts) else np.zeros(len(notes))
        moved = [(s + d, e + d, p, t) for (s, e, p, t), d in zip(notes, move, strict=True)]
        voices.append(_close_tied_gaps(moved))
    return assemble(name, voices, steps_per_bar)


def _close_tied_gaps(notes: list[tuple[float, float, int, bool]]) -> list[tuple[float, float, int, bool]]:
    """A note tied over a bar line that `bar_line_shifts` moved keeps sounding across the rest
    inserted there (bwv374 ties a chord out of a short bar): the tie wins over the gap."""
    closed: list[tuple[float, float, int, bool]] = []
    for start, end, pitch, tied in notes:
        if tied and closed and closed[-1][2] == pitch and closed[-1][1] < start:
            start = closed[-1][1]
        closed.append((start, end, pitch, tied))
    return closed


def corpus_paths() -> list[Path]:
    """Bach's scores in music21's bundled corpus (the .rntxt analyses are not scores)."""
    from music21 import corpus

    return sorted(Path(p) for p in corpus.getComposer("bach") if Path(p).suffix in SCORE_SUFFIXES)


def convert_file(path: Path) -> Chorale | str:
    """One corpus file → `Chorale`, or the reason it is unusable (a string, cheap to pickle)."""
    from music21 import converter

    # forceSource/storePickle off: music21's pickle cache would hide the real cost of a build
    # and write outside our cache directory.
    try:
        score = converter.parse(path, forceSource=True, storePickle=False)
        return chorale_from_score(_corpus_name(path), score)
    except UnusableScore as error:
        return str(error)


def _corpus_name(path: Path) -> str:
    return path.name.rsplit(".", 1)[0]


def build_corpus(
    paths: Sequence[Path] | None = None, workers: int = BUILD_WORKERS
) -> tuple[list[Chorale], list[tuple[str, str]]]:
    """Convert the corpus (all of Bach's chorales unless `paths` says otherwise) in a pool of
    `workers` processes. Returns (chorales, [(file name, reason skipped)])."""
    paths = corpus_paths() if paths is None else list(paths)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(convert_file, paths, chunksize=8))
    else:
        results = [convert_file(p) for p in paths]
    chorales = [r for r in results if isinstance(r, Chorale)]
    skipped = [(p.name, r) for p, r in zip(paths, results, strict=True) if isinstance(r, str)]
    return chorales, skipped


# --- splits ----------------------------------------------------------------------------------


def melody_key(chorale: Chorale) -> str:
    """A digest of the soprano line that ignores transposition and padding, so the same tune in
    another key (or with another pickup padding) counts as the same melody."""
    pitch, onset = chorale.pitches[0], chorale.onsets[0]
    sounding = np.flatnonzero(pitch)
    if sounding.size == 0:
        return hashlib.sha1(b"no melody").hexdigest()
    span = slice(sounding[0], sounding[-1] + 1)
    relative = np.where(pitch[span] > 0, pitch[span].astype(np.int16) - int(pitch[sounding[0]]) + 128, 0)
    digest = hashlib.sha1(relative.astype(np.uint8).tobytes())
    digest.update(onset[span].tobytes())
    return digest.hexdigest()


def drop_exact_duplicates(chorales: Iterable[Chorale]) -> list[Chorale]:
    """Keep the first of chorales identical in all voices (3 such pairs in the corpus)."""
    seen: set[bytes] = set()
    unique = []
    for chorale in chorales:
        key = hashlib.sha1(chorale.pitches.tobytes() + chorale.onsets.tobytes()).digest()
        key += chorale.steps_per_bar.to_bytes(2, "little")
        if key not in seen:
            seen.add(key)
            unique.append(chorale)
    return unique


def split_by_melody(
    chorales: Iterable[Chorale], validation: float = VALIDATION_SHARE, test: float = TEST_SHARE
) -> Splits:
    """Train/validation/test by a hash of the melody: deterministic, independent of which other
    pieces are present, and no soprano line (in any key) in two splits. Exact duplicates go."""
    splits = Splits([], [], [])
    for chorale in drop_exact_duplicates(chorales):
        # The hash's top 32 bits as a uniform number in [0, 1).
        share = int(melody_key(chorale)[:8], 16) / 2**32
        if share < test:
            splits.test.append(chorale)
        elif share < test + validation:
            splits.validation.append(chorale)
        else:
            splits.train.append(chorale)
    return splits


# --- the cache -------------------------------------------------------------------------------


def cache_dir(cache_dir: Path | None = None) -> Path:
    """The argument, else `$OPENCOMPOSER_DATA_DIR`, else `~/.cache/opencomposer`."""
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ[CACHE_DIR_ENV]) if os.environ.get(CACHE_DIR_ENV) else DEFAULT_CACHE_DIR


def cache_path(directory: Path | None = None) -> Path:
    return cache_dir(directory) / f"bach-chorales-v{FORMAT_VERSION}.npz"


def save_chorales(path: Path, chorales: Sequence[Chorale]) -> None:
    """All chorales in one npz: rolls concatenated along time, with each piece's length."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "names": np.array([c.name for c in chorales]),
        "steps": np.array([c.steps for c in chorales], dtype=np.int64),
        "steps_per_bar": np.array([c.steps_per_bar for c in chorales], dtype=np.int64),
        "pitches": np.concatenate([c.pitches for c in chorales], axis=1),
        "onsets": np.concatenate([c.onsets for c in chorales], axis=1),
    }
    # Written beside the target and renamed: a reader never sees half a file.
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as handle:
        np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub reads ** as allow_pickle
    os.replace(handle.name, path)


def read_chorales(path: Path) -> list[Chorale]:
    with np.load(path) as data:
        ends = np.cumsum(data["steps"])
        pitches = np.split(data["pitches"], ends[:-1], axis=1)
        onsets = np.split(data["onsets"], ends[:-1], axis=1)
        return [
            Chorale(str(name), p, o, int(spb))
            for name, p, o, spb in zip(data["names"], pitches, onsets, data["steps_per_bar"], strict=True)
        ]


def load_chorales(cache_dir: Path | None = None) -> Splits:
    """Bach's chorales split by melody: built on first use, then read from the cache
    (`cache_path`)."""
    path = cache_path(cache_dir)
    if not path.exists():
        chorales, _ = build_corpus()
        save_chorales(path, chorales)
    return split_by_melody(read_chorales(path))


# --- the user's own MIDI files ---------------------------------------------------------------


def load_midi_folder(folder: Path) -> tuple[list[Chorale], list[tuple[str, str]]]:
    """A folder of multi-track MIDI files (first note track = melody, next three =
    accompaniment) → (usable chorales, [(file name, reason rejected)]). Split them with
    `split_by_melody`."""
    from .midi import MidiError, read_tracks

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"MIDI folder {folder} does not exist or is not a folder")
    usable: list[Chorale] = []
    rejected: list[tuple[str, str]] = []
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".mid", ".midi"))
    for path in files:
        try:
            lines = read_tracks(path, count=len(VOICES))
        except MidiError as error:
            rejected.append((path.name, str(error)))
            continue
        if not lines.pitches[0].any():
            rejected.append(
                (path.name, "the first note track (the melody) has no note on the 16th-note grid")
            )
            continue
        usable.append(Chorale(path.name, lines.pitches, lines.onsets, lines.steps_per_bar))
    others = sorted(p.name for p in folder.iterdir() if p.is_file() and p not in files)
    rejected += [(name, "not a MIDI file (expected a .mid or .midi name)") for name in others]
    return usable, rejected


# --- the index of Bach's chorales (contracts.datasets.BACH_INDEX_FILE) -----------------------


def bach_index(chorales: Sequence[Chorale]) -> list[dict]:
    """One entry per chorale, as a built dataset's index.json (`gan.datasets.index_entry`):
    the computed tags, bars and training windows the API counts a job's filter with."""
    from .datasets import chorale_tags, index_entry

    return [index_entry(c, chorale_tags(c)) for c in chorales]


def write_bach_index(path: Path, cache: Path | None = None) -> list[dict]:
    """`bach_index` of the cached chorales (built first if absent), written to `path`."""
    source = cache_path(cache)
    if not source.exists():
        chorales, _ = build_corpus()
        save_chorales(source, chorales)
    from .datasets import dump_index

    entries = bach_index(read_chorales(source))
    path.write_text(dump_index(entries))
    return entries


# --- command line: bake the dataset (the Dockerfile runs `python -m gan.data`) --------------


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Build the Bach-chorale cache and print its counts.")
    parser.add_argument("--cache-dir", type=Path, default=None, help=f"default: ${CACHE_DIR_ENV} or ~/.cache")
    parser.add_argument("--rebuild", action="store_true", help="rebuild even if the cache exists")
    parser.add_argument(
        "--index",
        nargs="?",
        type=Path,
        const=BACH_INDEX_FILE,
        default=None,
        help=f"write the chorales' index (tags, bars, windows per piece) to FILE (default {BACH_INDEX_FILE})",
    )
    args = parser.parse_args(argv)
    path = cache_path(args.cache_dir)
    started = time.perf_counter()
    if args.rebuild or not path.exists():
        chorales, skipped = build_corpus()
        save_chorales(path, chorales)
        for name, reason in skipped:
            print(f"skipped {name}: {reason}")
        print(
            f"built {len(chorales)} chorales ({len(skipped)} files skipped) in "
            f"{time.perf_counter() - started:.1f} s"
        )
    splits = split_by_melody(read_chorales(path))
    meters: dict[int, int] = {}
    for chorale in splits.train + splits.validation + splits.test:
        meters[chorale.steps_per_bar] = meters.get(chorale.steps_per_bar, 0) + 1
    print(
        f"{path} ({path.stat().st_size / 1e6:.2f} MB): {splits.counts()}; "
        f"pieces by steps per bar: {dict(sorted(meters.items()))}; "
        f"total {time.perf_counter() - started:.1f} s"
    )
    if args.index is not None:
        entries = write_bach_index(args.index, args.cache_dir)
        print(f"wrote the index of {len(entries)} chorales to {args.index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
