"""A user's dataset: a zip of multi-track MIDI files, uploaded once, built once, trained on by
any number of jobs, each filtering it with tags.

The flow (DESIGN.md "Next additions"):

1. `POST /datasets` writes the dataset item (`WAITING_FOR_UPLOAD`) and answers a presigned S3
   POST for `upload_key(id)` whose policy enforces `MAX_UPLOAD_BYTES` (S3 itself refuses a
   larger body; nothing is stored).
2. The upload's `ObjectCreated` event starts the dataset build function (`BUILDING`): it opens
   the zip with the limits below, reads every member through the training's own reader
   (`gan.data`, the rules of `contracts.midi`), tags each piece, writes the built pieces
   (`pieces_key`) and the full report (`report_key`), and ends the item `READY`, or `FAILED`
   with a reason a person can act on. The zip itself is deleted once read.
3. `POST /jobs` with `dataset` and `tags`: the API counts the pieces and windows the filter
   leaves from the dataset's index (`index_key`; the Bach chorales' index ships in the package,
   `BACH_INDEX_FILE`) and refuses too little with a `400` naming `tags`; the training job gets
   the built pieces as its `DATASET_CHANNEL` input and the tags as `TAGS_HYPERPARAMETER`, and
   filters with the same `matches` below.

Plain data and small functions, standard library only (see `contracts/__init__.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from . import storage

# --- identity -------------------------------------------------------------------------------
# A user's dataset id: `uuid4().hex`, as a job's. The built-in Bach chorales have this fixed id:
# every caller can read it and train on it, none can delete it; a job without `dataset` uses it.
DATASET_ID_PATTERN = r"^[0-9a-f]{32}$"
BACH_DATASET_ID = "bach-chorales"
DATASET_NAME_PATTERN = r"^[A-Za-z0-9 _-]+$"
DATASET_NAME_MAX = 64

# --- statuses -------------------------------------------------------------------------------
WAITING_FOR_UPLOAD = "WAITING_FOR_UPLOAD"
BUILDING = "BUILDING"
READY = "READY"
FAILED = "FAILED"
DATASET_STATUSES = (WAITING_FOR_UPLOAD, BUILDING, READY, FAILED)
FINAL_DATASET_STATUSES = (READY, FAILED)

# --- limits (the README's dataset section repeats them; a test compares) ---------------------
# The zip, as uploaded: the presigned POST's `content-length-range` condition.
MAX_UPLOAD_BYTES = 256 * 1024 * 1024
# How long the presigned POST stays valid.
UPLOAD_EXPIRES_S = 3600
# Members of the archive (directories not counted), and their total size once unpacked: a zip
# bomb is refused before a byte of it is inflated (the sizes come from the central directory and
# are enforced again while reading, since a central directory can lie).
MAX_FILES = 20_000
MAX_UNPACKED_BYTES = 2 * 1024 * 1024 * 1024
# One member's unpacked size: contracts.midi's file limit.
MAX_MEMBER_BYTES = 1024 * 1024
# A member whose unpacked size is over this many times its packed size is refused as a bomb.
MAX_COMPRESSION_RATIO = 200
# What a filter must leave for a job to start (POST /jobs answers 400 naming `tags` below it):
# two pieces (one trains, one validates) and a batch's worth of 4-bar windows.
MIN_PIECES = 2
MIN_WINDOWS = 64
MIDI_SUFFIXES = (".mid", ".midi")

# --- tags -----------------------------------------------------------------------------------
# Every piece gets the computed tags `mode:major|minor`, `meter:<n>/<d>` and `key:<tonic>-<mode>`
# (tonic as `C`, `F#`, `Bb`), for Bach's chorales as for a user's files; a user's piece also gets
# each folder of its path in the zip as a tag of its own (`jazz/bebop/x.mid` → `jazz`, `bebop`),
# lower-cased. A job's `tags` keep the pieces that carry every one of them (AND).
MODE_TAG_PREFIX = "mode:"
METER_TAG_PREFIX = "meter:"
KEY_TAG_PREFIX = "key:"
COMPUTED_TAG_PREFIXES = (MODE_TAG_PREFIX, METER_TAG_PREFIX, KEY_TAG_PREFIX)
MODES = ("major", "minor")
TAG_PATTERN = r"^[a-z0-9#][a-z0-9#:/ _.+-]{0,63}$"
MAX_JOB_TAGS = 10


def mode_tag(mode: str) -> str:
    return f"{MODE_TAG_PREFIX}{mode}"


def meter_tag(numerator: int, denominator: int) -> str:
    return f"{METER_TAG_PREFIX}{numerator}/{denominator}"


def key_tag(tonic: str, mode: str) -> str:
    """`key:F#-minor`, lower-cased as every tag is (`key:f#-minor`)."""
    return f"{KEY_TAG_PREFIX}{tonic}-{mode}".lower()


def folder_tags(member: str) -> list[str]:
    """The folder tags of a member path of the zip (already checked to stay inside it)."""
    folders = Path(member).parts[:-1]
    tags = []
    for folder in folders:
        tag = re.sub(r"[^a-z0-9#:/ _.+-]", "-", folder.strip().lower())[:64]
        if tag and re.match(TAG_PATTERN, tag) and tag not in tags:
            tags.append(tag)
    return tags


def is_tag(text: str) -> bool:
    return re.match(TAG_PATTERN, text) is not None


def matches(piece_tags: Iterable[str], wanted: Iterable[str]) -> bool:
    """Whether a piece with `piece_tags` is kept by a job's `wanted` tags (every one of them)."""
    have = set(piece_tags)
    return all(tag in have for tag in wanted)


# --- the training job's side ------------------------------------------------------------------
# SageMaker input channel of the built pieces (SM_CHANNEL_DATASET): absent for the Bach chorales,
# which the training image bakes in.
DATASET_CHANNEL = "dataset"
# The job's filter, as a SageMaker hyperparameter: a JSON list of tags (`'["mode:minor"]'`).
TAGS_HYPERPARAMETER = "tags"

# --- the build's report ---------------------------------------------------------------------
# `report_key`'s JSON, and (with `rejected` cut to ITEM_REJECTED_MAX) the summary the dataset
# item holds and GET /datasets/{id} answers:
#   {"files": int,            members of the zip that are files (MIDI or not)
#    "accepted": int,         files that became pieces
#    "rejected": [{"file": member path, "reason": why, in words a person can act on}],
#    "pieces": int, "bars": int, "windows": int,     over the accepted pieces
#    "tags": {tag: pieces carrying it}}
# A file is rejected, never silently dropped: unreadable, not MIDI, fewer than four voices, no
# notes, over a limit, a path that leaves the archive.
REPORT_FIELDS = ("files", "accepted", "rejected", "pieces", "bars", "windows", "tags")

# --- where a dataset lives ------------------------------------------------------------------
# Table: the dataset item under its own partition (`DATASET#<id>` / `DATASET`), item type
# `dataset`; listed per owner by its own sparse index (a job's `owner` attribute is not set on
# it, so GET /jobs never sees a dataset).
DATASET_ITEM = "dataset"
DATASET_SORT_KEY_VALUE = "DATASET"
DATASET_OWNER_INDEX = "datasets-by-owner"
DATASET_OWNER_ATTRIBUTE = "dataset_owner"
DATASET_OWNER_INDEX_SORT_KEY = "created_at"
# Rejected files kept in the item (the full list is in the report object).
ITEM_REJECTED_MAX = 100

DATASETS_PREFIX = "datasets/"
# The file the Bach chorales' index is in, beside this module (generated by `python -m gan.data
# --index`, checked against the builder by a test).
BACH_INDEX_FILE = Path(__file__).with_name("bach_index.json")


def dataset_pk(dataset_id: str) -> str:
    return f"DATASET#{dataset_id}"


def dataset_key(dataset_id: str) -> dict[str, str]:
    return {storage.PARTITION_KEY: dataset_pk(dataset_id), storage.SORT_KEY: DATASET_SORT_KEY_VALUE}


def dataset_prefix(dataset_id: str) -> str:
    return f"{DATASETS_PREFIX}{dataset_id}/"


def upload_key(dataset_id: str) -> str:
    """The uploaded zip: the presigned POST's key, whose ObjectCreated event starts the build."""
    return f"{dataset_prefix(dataset_id)}upload/collection.zip"


def built_prefix(dataset_id: str) -> str:
    """What the build wrote for the training: the `DATASET_CHANNEL` input's S3 prefix."""
    return f"{dataset_prefix(dataset_id)}built/"


def pieces_key(dataset_id: str) -> str:
    """The built pieces (the training's reader loads them as it loads Bach's cache)."""
    return f"{built_prefix(dataset_id)}pieces.npz"


def index_key(dataset_id: str) -> str:
    """One entry per accepted piece: `{"name", "tags", "bars", "windows"}` (JSON)."""
    return f"{built_prefix(dataset_id)}index.json"


def report_key(dataset_id: str) -> str:
    """The whole build report (JSON): every file, accepted or rejected with its reason."""
    return f"{dataset_prefix(dataset_id)}report.json"


def dataset_id_of_upload(key: str) -> str | None:
    """The dataset id an uploaded object's key belongs to, or None for any other key."""
    found = re.match(rf"^{re.escape(DATASETS_PREFIX)}([0-9a-f]{{32}})/upload/collection\.zip$", key)
    return found.group(1) if found else None


# --- what a job records of its data -----------------------------------------------------------
# The job item's `training_data`: `{"dataset": id, "tags": [...], "pieces": n, "windows": n}`.
# The API writes it at submit with what the index counts; the training overwrites `pieces` and
# `windows` with what it actually trains on (the training split after filtering).
JOB_TRAINING_DATA = "training_data"
