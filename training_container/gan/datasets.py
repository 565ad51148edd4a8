"""A user's zip of MIDI files → the built pieces the training loads, their index and a report.

`build_zip` is the dataset build (`contracts.datasets`): the same reader as the training's own
MIDI folder (`gan.midi.read_tracks`, the rules of `contracts.midi`: first note track = melody,
next three = accompaniment), the same computed tags as Bach's chorales (`gan.tags`), and every
file that cannot serve named in the report with its reason.

The archive as a whole is refused (`ArchiveError`) before a byte is inflated when its central
directory says so: not a zip, more than MAX_FILES members, more than MAX_UNPACKED_BYTES in all,
or one member over MAX_COMPRESSION_RATIO (a bomb). Sizes in a central directory can lie, so each
member is inflated here from its raw bytes with zlib, never past what it declares: one that
inflates to more is a crafted archive, refused as a bomb too. A single member is rejected with
its reason: a path that leaves the archive (absolute, a drive, `..`), not `.mid`/`.midi`, over
MAX_MEMBER_BYTES, compressed with a method other than stored/deflate, encrypted, damaged (its
CRC), not a readable MIDI file, fewer than four voices, no notes, longer than MAX_PIECE_BARS.

Ignored, neither counted in `files` nor rejected: directory entries, and the operating
systems' own files (`__MACOSX/…`, `._x`, `.DS_Store`, `Thumbs.db`, `desktop.ini`), which zip
tools add without the user asking; the report lists them under `ignored`, so none vanishes
unseen. So `files == accepted + len(rejected)`.

Bounded memory at any size: members are read one at a time and handed to a pool of
`BUILD_WORKERS` processes with at most `IN_FLIGHT_PER_WORKER` per worker waiting; each result
is appended to per-voice files on disk at once and the npz is assembled from them by streaming
(`_PieceWriter`); only names, lengths and tags stay in memory. Each converted file is cached by
the sha256 of its bytes (and `PIECE_FORMAT`), so a rebuild or a retried build converts nothing
twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import struct
import tempfile
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from contracts import datasets
from gan import tags as computed
from gan.data import BUILD_WORKERS, VOICES, Chorale, read_chorales
from gan.grid import STEPS_PER_QUARTER

log = logging.getLogger(__name__)

PIECES_FILE = "pieces.npz"
INDEX_FILE = "index.json"
# Bump when a converted piece changes (reader, tags): the per-file cache's names carry it.
PIECE_FORMAT = 1
# Members waiting for a worker: enough to keep each busy, few enough to bound memory (each is
# at most MAX_MEMBER_BYTES).
IN_FLIGHT_PER_WORKER = 4
# A piece's length limit. contracts.midi checks a file's length before reading its notes only
# when given a limit (a few bytes of MIDI can say "a year later"): a user's piece may be longer
# than a melody to accompany (MAX_BARS, 256) but not unbounded.
MAX_PIECE_BARS = 1024
# Zip's compression methods this reader inflates: every zip tool's default is one of them.
STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's own layout of a local file header
_LOCAL_SIGNATURE = b"PK\x03\x04"
_CHUNK = 64 * 1024
OS_JUNK_FOLDERS = ("__MACOSX",)
OS_JUNK_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")


class ArchiveError(ValueError):
    """The archive as a whole is refused (not a zip, a bomb, over a limit); the message says why."""


# --- windows: the training's count ----------------------------------------------------------------


# Steps per training window of the default model: `gan.model.ModelConfig.window`, repeated here
# so that a build need not import torch (a test checks that the two agree).
TRAINING_WINDOW = 64


def training_window() -> int:
    return TRAINING_WINDOW


def count_windows(melody: np.ndarray, window: int | None = None, hop: int = STEPS_PER_QUARTER) -> int:
    """How many windows `gan.encoding.Windows` samples from a piece whose melody line is
    `melody` [T]: every `hop` steps (a beat), a window of `window` steps holding a melody note;
    a piece shorter than a window is padded to one. The index, the report and the job's
    `training_data` all count with this (tests/unit/test_gan_datasets.py checks it against
    `len(Windows(...))`)."""
    window = training_window() if window is None else window
    sounding = np.asarray(melody) > 0
    if sounding.size < window:
        sounding = np.pad(sounding, (0, window - sounding.size))
    starts = np.arange(0, sounding.size - window + 1, hop)
    notes_before = np.concatenate([[0], np.cumsum(sounding)])
    return int(((notes_before[starts + window] - notes_before[starts]) > 0).sum())


def index_entry(chorale: Chorale, piece_tags: list[str], window: int | None = None) -> dict:
    """One piece of an index (`contracts.datasets.index_key`, `BACH_INDEX_FILE`)."""
    return {
        "name": chorale.name,
        "tags": list(piece_tags),
        "bars": chorale.bars,
        "windows": count_windows(chorale.pitches[0], window),
    }


def dump_index(entries: list[dict]) -> str:
    """An index as JSON text, one piece per line (the committed Bach index diffs by piece)."""
    return "[\n" + ",\n".join(json.dumps(entry) for entry in entries) + ("\n]\n" if entries else "]\n")


def chorale_tags(chorale: Chorale) -> list[str]:
    """The computed tags of a piece known only by its rolls (Bach's cache, a MIDI folder)."""
    return computed.computed_tags(chorale.pitches, chorale.steps_per_bar)


# --- one member → one piece (in a worker) ------------------------------------------------------


@dataclass
class Piece:
    pitches: np.ndarray  # uint8 [4, T]
    onsets: np.ndarray  # bool [4, T]
    steps_per_bar: int
    tags: list[str]  # computed tags (the folder tags are added by the caller)


def convert_member(data: bytes, cache_dir: str | None = None) -> Piece | str:
    """A member's bytes → `Piece`, or the reason it cannot serve. Cached by content."""
    cached = _cache_file(data, cache_dir)
    if cached is not None and cached.exists():
        try:
            return _read_cached(cached)
        except Exception:  # a damaged cache file is rebuilt, never trusted
            log.warning("ignoring unreadable cache file %s", cached, exc_info=True)
    result = _convert(data)
    if cached is not None:
        try:
            _write_cached(cached, result)
        except OSError:  # a full or read-only disk slows a rebuild, nothing more
            log.warning("cannot cache a piece in %s", cached.parent, exc_info=True)
    return result


def _convert(data: bytes) -> Piece | str:
    from gan.midi import MidiError, read_tracks

    try:
        lines = read_tracks(data, count=len(VOICES), max_bars=MAX_PIECE_BARS)
    except MidiError as error:
        return str(error)
    except Exception as error:  # a reader bug on a strange file rejects that file, not the build
        return f"the file could not be read ({type(error).__name__}: {error})"
    if not lines.pitches[0].any():
        return "the first note track (the melody) has no note on the 16th-note grid"
    pitches, onsets = lines.pitches[: len(VOICES)], lines.onsets[: len(VOICES)]
    tags = computed.computed_tags(pitches, lines.steps_per_bar, lines.time_signature)
    return Piece(pitches.astype(np.uint8), onsets.astype(bool), int(lines.steps_per_bar), tags)


def _cache_file(data: bytes, cache_dir: str | None) -> Path | None:
    if cache_dir is None:
        return None
    digest = hashlib.sha256(data).hexdigest()
    return Path(cache_dir) / digest[:2] / f"{digest}.v{PIECE_FORMAT}.npz"


def _write_cached(path: Path, result: Piece | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(result, Piece):
        arrays = {
            "pitches": result.pitches,
            "onsets": result.onsets,
            "steps_per_bar": np.int64(result.steps_per_bar),
            "tags": np.array(result.tags, dtype=str),
        }
    else:
        arrays = {"reason": np.array(result)}
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub reads ** as allow_pickle
    os.replace(handle.name, path)


def _read_cached(path: Path) -> Piece | str:
    with np.load(path) as cached:
        if "reason" in cached:
            return str(cached["reason"])
        tags = [str(tag) for tag in cached["tags"]]
        return Piece(cached["pitches"], cached["onsets"], int(cached["steps_per_bar"]), tags)


# --- the archive ---------------------------------------------------------------------------------


def _is_junk(parts: tuple[str, ...]) -> bool:
    name = parts[-1]
    return parts[0] in OS_JUNK_FOLDERS or name in OS_JUNK_FILES or name.startswith("._")


def _escapes(name: str) -> bool:
    """Absolute (`/x`, `\\x`, `C:x`) or climbing out (`..`): a path that leaves the archive.
    Backslashes count as separators: some Windows tools write them."""
    unified = name.replace("\\", "/")
    absolute = unified.startswith("/") or re.match(r"^[A-Za-z]:", unified) is not None
    return absolute or ".." in unified.split("/")


def _check_archive(members: list[zipfile.ZipInfo]) -> None:
    """The central directory's verdict on the whole archive, before anything is inflated."""
    if len(members) > datasets.MAX_FILES:
        raise ArchiveError(
            f"the archive holds {len(members)} files; at most {datasets.MAX_FILES} are read: "
            "split the collection into several datasets"
        )
    total = sum(m.file_size for m in members)
    if total > datasets.MAX_UNPACKED_BYTES:
        raise ArchiveError(
            f"the archive unpacks to {total} bytes; at most {datasets.MAX_UNPACKED_BYTES} "
            f"({datasets.MAX_UNPACKED_BYTES // 2**30} GiB) are read: split the collection"
        )
    for member in members:
        if member.file_size > datasets.MAX_COMPRESSION_RATIO * max(member.compress_size, 1):
            raise ArchiveError(
                f"{member.filename} would unpack {member.file_size} bytes from {member.compress_size} "
                f"(over {datasets.MAX_COMPRESSION_RATIO} times): refused as a zip bomb"
            )


class _Unusable(Exception):
    """One member that cannot be read; the message is the report's reason."""


def _inflate(handle, member: zipfile.ZipInfo) -> bytes:
    """The member's bytes, inflated here from its raw data and never past its declared size."""
    if member.flag_bits & 0x1:
        raise _Unusable("the file is encrypted: zip it without a password")
    if member.compress_type not in (STORED, DEFLATED):
        raise _Unusable(
            f"the file is compressed with zip method {member.compress_type}; "
            "store or deflate it (every zip tool's default)"
        )
    handle.seek(member.header_offset)
    header = handle.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_SIGNATURE:
        raise _Unusable("the archive is damaged at this file (no local header where the directory says)")
    fields = _LOCAL_HEADER.unpack(header)
    handle.seek(member.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1])
    declared = member.file_size
    inflater = zlib.decompressobj(-zlib.MAX_WBITS) if member.compress_type == DEFLATED else None
    out = bytearray()
    left = member.compress_size
    try:
        while left > 0 or (inflater is not None and inflater.unconsumed_tail):
            if inflater is not None and inflater.unconsumed_tail:
                raw = inflater.unconsumed_tail
            else:
                raw = handle.read(min(_CHUNK, left))
                if not raw:
                    raise _Unusable("the archive is damaged at this file (it ends early)")
                left -= len(raw)
            # One byte over the declared size is enough to know it lies.
            room = declared + 1 - len(out)
            out += inflater.decompress(raw, room) if inflater is not None else raw[:room]
            if len(out) > declared:
                raise ArchiveError(
                    f"{member.filename} declares {declared} bytes but inflates to more: "
                    "refused as a zip bomb (the archive's sizes are false)"
                )
            if inflater is not None and inflater.eof:
                break
    except zlib.error as error:
        raise _Unusable(f"the file's compressed data is damaged ({error})") from error
    if len(out) != declared or zlib.crc32(out) != member.CRC:
        raise _Unusable("the file is damaged in the archive (its size or checksum is wrong)")
    return bytes(out)


@dataclass
class _Candidate:
    name: str
    data: bytes


@dataclass
class _Outcome:
    """What the archive pass decides before conversion: a member to convert or a rejection."""

    name: str
    candidate: _Candidate | None = None
    reason: str | None = None


def _members(zip_path: Path) -> Iterator[_Outcome | str]:
    """Each file member in archive order: an `_Outcome` (bytes to convert, or why not), or its
    name (a str) when it is operating-system junk, ignored."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise ArchiveError(f"the upload is not a readable zip archive ({error})") from error
    with archive, open(zip_path, "rb") as handle:
        members = [m for m in archive.infolist() if not m.is_dir()]
        _check_archive(members)
        for member in members:
            name = member.filename
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if _escapes(name):
                yield _Outcome(name, reason="the path leaves the archive (absolute or with ..): refused")
                continue
            if not parts or _is_junk(parts):
                yield name
                continue
            if PurePosixPath(parts[-1]).suffix.lower() not in datasets.MIDI_SUFFIXES:
                yield _Outcome(name, reason="not a MIDI file (expected a .mid or .midi name)")
                continue
            if member.file_size > datasets.MAX_MEMBER_BYTES:
                yield _Outcome(
                    name,
                    reason=f"the file is {member.file_size} bytes; at most {datasets.MAX_MEMBER_BYTES} "
                    f"({datasets.MAX_MEMBER_BYTES // 1024} KiB) are read: split it into shorter pieces",
                )
                continue
            try:
                yield _Outcome(name, candidate=_Candidate(name, _inflate(handle, member)))
            except _Unusable as error:
                yield _Outcome(name, reason=str(error))


# --- writing the pieces, streaming ------------------------------------------------------------------


class _PieceWriter:
    """Appends each piece's voice lines to one file per voice and array, then writes the npz
    `gan.data.read_chorales` reads (pitches and onsets [4, total steps]) by copying those files
    into it: the rolls are never all in memory."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.names: list[str] = []
        self.steps: list[int] = []
        self.steps_per_bar: list[int] = []
        # Eight files open for the whole build (closed by `write`): a context manager cannot
        # span the calls to `add`.
        self.files = {
            (array, voice): open(folder / f"{array}-{voice}.bin", "wb")  # noqa: SIM115
            for array in ("pitches", "onsets")
            for voice in range(len(VOICES))
        }

    def add(self, name: str, piece: Piece) -> None:
        for voice in range(len(VOICES)):
            self.files["pitches", voice].write(piece.pitches[voice].astype(np.uint8).tobytes())
            self.files["onsets", voice].write(piece.onsets[voice].astype(bool).tobytes())
        self.names.append(name)
        self.steps.append(int(piece.pitches.shape[1]))
        self.steps_per_bar.append(piece.steps_per_bar)

    def write(self, path: Path) -> None:
        for file in self.files.values():
            file.close()
        total = sum(self.steps)
        small = {
            "names": np.array(self.names, dtype=str),
            "steps": np.array(self.steps, dtype=np.int64),
            "steps_per_bar": np.array(self.steps_per_bar, dtype=np.int64),
        }
        partial = path.with_name(f".{path.name}.partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as npz:
            for key, values in small.items():
                with npz.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, values)
            for array, dtype in (("pitches", np.uint8), ("onsets", np.bool_)):
                with npz.open(f"{array}.npy", "w", force_zip64=True) as member:
                    shape = (len(VOICES), total)
                    header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
                    np.lib.format.write_array_header_1_0(member, header)
                    for voice in range(len(VOICES)):  # row-major [4, total]: voice after voice
                        with open(self.folder / f"{array}-{voice}.bin", "rb") as rows:
                            while chunk := rows.read(_CHUNK * 16):
                                member.write(chunk)
        os.replace(partial, path)


# --- the build ----------------------------------------------------------------------------------


@dataclass
class _Report:
    files: int = 0
    accepted: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)
    bars: int = 0
    windows: int = 0
    tags: dict[str, int] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    def reject(self, name: str, reason: str) -> None:
        self.files += 1
        self.rejected.append({"file": name, "reason": reason})

    def as_dict(self) -> dict:
        return {
            "files": self.files,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "pieces": self.accepted,
            "bars": self.bars,
            "windows": self.windows,
            "tags": dict(sorted(self.tags.items())),
            "ignored": self.ignored,
        }


def default_cache_dir() -> Path:
    """Converted pieces under the data cache (`gan.data.cache_dir`: $OPENCOMPOSER_DATA_DIR)."""
    from gan.data import cache_dir

    return cache_dir() / "pieces"


def build_zip(
    zip_path: Path, out_dir: Path, *, workers: int | None = None, cache_dir: Path | None = None
) -> dict:
    """Reads the zip member by member (never extracting all of it), converts each MIDI member
    with the training's own reader, tags it, writes out_dir/pieces.npz (what the training loads)
    and out_dir/index.json (a list of {"name", "tags", "bars", "windows"} per accepted piece) and
    returns the report (`contracts.datasets.REPORT_FIELDS`, plus `ignored`; every rejected file
    with its reason). `workers` processes convert (BUILD_WORKERS by default; 1: in this process,
    as where processes cannot be started); `cache_dir` keeps each converted file by content
    (default `default_cache_dir()`). Raises `ArchiveError` for an archive refused as a whole."""
    import gan.midi  # noqa: F401  # imported once here, so that forked workers start with it

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = _usable_cache(cache_dir)
    workers = BUILD_WORKERS if workers is None else max(1, workers)
    window = training_window()
    report = _Report()
    entries: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="pieces-", dir=out_dir) as scratch:
        writer = _PieceWriter(Path(scratch))
        pool = _pool(workers)
        try:
            for name, result in _convert_all(_members(Path(zip_path)), pool, workers, cache, report):
                if isinstance(result, str):
                    report.reject(name, result)
                    continue
                piece_tags = list(dict.fromkeys(result.tags + datasets.folder_tags(name)))
                writer.add(name, result)
                chorale = Chorale(name, result.pitches, result.onsets, result.steps_per_bar)
                entry = index_entry(chorale, piece_tags, window)
                entries.append(entry)
                report.files += 1
                report.accepted += 1
                report.bars += entry["bars"]
                report.windows += entry["windows"]
                for tag in piece_tags:
                    report.tags[tag] = report.tags.get(tag, 0) + 1
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        writer.write(out_dir / PIECES_FILE)
    _write_text(out_dir / INDEX_FILE, dump_index(entries))
    return report.as_dict()


def _usable_cache(folder: Path | None) -> str | None:
    """The cache folder as a string (workers get it pickled), or None where none can be made:
    a build without a cache is slower on a retry, never wrong."""
    try:
        folder = Path(folder) if folder is not None else default_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder)
    except (OSError, RuntimeError):  # RuntimeError: no home folder to put the default under
        log.warning("no piece cache: cannot create %s", folder, exc_info=True)
        return None


def _pool(workers: int) -> Executor | None:
    if workers <= 1:
        return None
    try:
        return ProcessPoolExecutor(max_workers=workers)
    except (OSError, NotImplementedError):  # AWS Lambda has no /dev/shm for the pool's semaphores
        log.warning("cannot start %d worker processes; converting in this process", workers, exc_info=True)
        return None


def _convert_all(
    members: Iterator[_Outcome | str], pool: Executor | None, workers: int, cache: str | None, report: _Report
) -> Iterator[tuple[str, Piece | str]]:
    """(name, piece or reason) per member in archive order, at most IN_FLIGHT_PER_WORKER ×
    workers members' bytes waiting for the pool at any time."""
    waiting: deque[tuple[str, Future | Piece | str]] = deque()
    limit = IN_FLIGHT_PER_WORKER * workers
    for outcome in members:
        if isinstance(outcome, str):
            report.ignored.append(outcome)
            continue
        if outcome.candidate is None:
            waiting.append((outcome.name, outcome.reason or "unusable"))
        elif pool is None:
            waiting.append((outcome.name, convert_member(outcome.candidate.data, cache)))
        else:
            waiting.append((outcome.name, pool.submit(convert_member, outcome.candidate.data, cache)))
        while len(waiting) > limit or (waiting and not isinstance(waiting[0][1], Future)):
            yield _settled(waiting.popleft())
    while waiting:
        yield _settled(waiting.popleft())


def _settled(item: tuple[str, Future | Piece | str]) -> tuple[str, Piece | str]:
    name, result = item
    return name, result.result() if isinstance(result, Future) else result


def _write_text(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)


# --- reading a built dataset ---------------------------------------------------------------------


def load_built(folder: Path) -> list[tuple[Chorale, list[str]]]:
    """A built dataset (the `DATASET_CHANNEL` folder: pieces.npz and index.json) → each piece
    with its tags, in the index's order."""
    folder = Path(folder)
    pieces, index = folder / PIECES_FILE, folder / INDEX_FILE
    for path in (pieces, index):
        if not path.is_file():
            raise FileNotFoundError(
                f"the dataset channel {folder} holds no {path.name}: was the dataset built?"
            )
    entries = json.loads(index.read_text())
    if not entries:
        return []
    chorales = read_chorales(pieces)
    if [c.name for c in chorales] != [e["name"] for e in entries]:
        raise ValueError(
            f"{pieces.name} and {index.name} in {folder} list different pieces: rebuild the dataset"
        )
    return [(chorale, list(entry["tags"])) for chorale, entry in zip(chorales, entries, strict=True)]


# --- the training's side: the job's tags and what they leave ---------------------------------------


def parse_tags(raw: object) -> list[str]:
    """The `tags` hyperparameter (`contracts.datasets.TAGS_HYPERPARAMETER`): a JSON list of tags,
    as a string, JSON-encoded once more by the Python SDK, or already a list. ValueError names
    the hyperparameter."""
    value = raw
    for _ in range(2):  # SageMaker's string, then the SDK's extra encoding
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as error:
                raise ValueError(f"hyperparameter tags: {raw!r} is not a JSON list of tags") from error
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise ValueError(f"hyperparameter tags: {raw!r} is not a JSON list of tags")
    if len(value) > datasets.MAX_JOB_TAGS:
        raise ValueError(f"hyperparameter tags: {len(value)} tags; at most {datasets.MAX_JOB_TAGS}")
    bad = [tag for tag in value if not datasets.is_tag(tag)]
    if bad:
        raise ValueError(
            f"hyperparameter tags: {bad[0]!r} is not a tag (lower case, as `mode:minor` or `jazz`)"
        )
    return list(dict.fromkeys(value))


def select(
    pieces: list[tuple[Chorale, list[str]]], wanted: list[str], source: str, window: int | None = None
) -> list[Chorale]:
    """The pieces carrying every `wanted` tag (`contracts.datasets.matches`); fewer than
    MIN_PIECES pieces or MIN_WINDOWS training windows left is a ValueError saying so (the API
    refuses such a job first; the training must not start on nothing either)."""
    kept = [chorale for chorale, tags in pieces if datasets.matches(tags, wanted)]
    windows = sum(count_windows(c.pitches[0], window) for c in kept)
    if len(kept) < datasets.MIN_PIECES or windows < datasets.MIN_WINDOWS:
        what = f"the tags {json.dumps(wanted)} leave" if wanted else "there are"
        raise ValueError(
            f"{what} {len(kept)} piece(s) and {windows} training window(s) in {source}; at least "
            f"{datasets.MIN_PIECES} pieces and {datasets.MIN_WINDOWS} windows are needed to train: "
            + ("choose fewer or other tags" if wanted else "add pieces to the dataset")
        )
    return kept
