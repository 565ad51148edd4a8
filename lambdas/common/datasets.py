"""What a job's data will be: the dataset it names, filtered by its tags, counted from the
dataset's index before anything is written, so a filter that leaves too little is a 400 and
not a training that fails (or trains on two bars) later.

The index is one entry per piece, `{"name", "tags", "bars", "windows"}`
(`contracts.datasets.index_key`): a user's is in S3, written by the dataset build; the Bach
chorales' ships in the package (`contracts.datasets.BACH_INDEX_FILE`) and is read once per
process. Pieces are kept with the training's own rule, `contracts.datasets.matches`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger

from contracts import datasets
from lambdas.common.errors import DatasetStateConflictError, InvalidFieldError

logger = Logger(service="opencomposer-api")
DATASET_FIELD = "dataset"
TAGS_FIELD = "tags"
# How many of the dataset's tags a "no piece carries" answer suggests (the commonest first).
TAGS_SUGGESTED = 12

Index = list[dict[str, Any]]
# The caller's dataset as a plain dict (`lambdas.common.dal.datasets`), or DatasetNotFoundError
# naming `dataset`.
DatasetLookup = Callable[[str, str], dict[str, Any]]
# An S3 object's bytes, None when there is none (`ArtifactsStore.get`).
ObjectReader = Callable[[str], bytes | None]


class BrokenIndexError(ValueError):
    """An index that is not the contract's list of pieces."""


def parse_index(raw: bytes | str) -> Index:
    """The entries of an index document, each checked for what counting needs."""
    try:
        document = json.loads(raw)
    except ValueError as e:
        raise BrokenIndexError(f"not JSON ({e})") from e
    if not isinstance(document, list):
        raise BrokenIndexError("not a list of pieces")
    for entry in document:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("tags"), list)
            or not isinstance(entry.get("windows"), int)
        ):
            raise BrokenIndexError(f"a piece without tags or windows: {str(entry)[:80]}")
    return document


@cache
def bach_index() -> Index | None:
    """The packaged index of the Bach chorales, None where the package lacks it."""
    if not datasets.BACH_INDEX_FILE.is_file():
        return None
    return parse_index(datasets.BACH_INDEX_FILE.read_bytes())


def training_data(owner: str, dataset_id: str, tags: list[str], *, lookup: DatasetLookup,
                  read: ObjectReader) -> dict[str, Any]:
    """`contracts.datasets.JOB_TRAINING_DATA` of a new job: `{dataset, tags, pieces, windows}`,
    or the domain error that refuses the job (404/409 naming `dataset`, 400 naming `tags`)."""
    dataset = lookup(owner, dataset_id)
    if dataset.get("status") != datasets.READY:
        why = f": {dataset['failure_reason']}" if dataset.get("failure_reason") else ""
        raise DatasetStateConflictError(
            f"dataset {dataset_id} is {dataset.get('status')}{why}; a job trains on a READY dataset",
            DATASET_FIELD,
        )
    index = _index(dataset_id, read)
    if index is None:
        # A package built without the Bach index: the training still has the chorales baked in
        # and reports its counts; a filter cannot be checked without it.
        if tags:
            raise DatasetStateConflictError(
                f"this deployment has no index of {dataset_id}, so its tags cannot be checked",
                TAGS_FIELD,
            )
        logger.warning("no packaged index of the Bach chorales: the job's counts come from its training")
        return {"dataset": dataset_id, "tags": [], "pieces": None, "windows": None}
    _check_known(dataset_id, index, tags)
    kept = [entry for entry in index if datasets.matches(entry["tags"], tags)]
    pieces, windows = len(kept), sum(entry["windows"] for entry in kept)
    if pieces < datasets.MIN_PIECES or windows < datasets.MIN_WINDOWS:
        what = f"the tags {', '.join(tags)} leave" if tags else f"dataset {dataset_id} has"
        raise InvalidFieldError(
            TAGS_FIELD if tags else DATASET_FIELD,
            f"{what} {pieces} piece(s) and {windows} window(s); a job needs at least "
            f"{datasets.MIN_PIECES} pieces and {datasets.MIN_WINDOWS} windows",
        )
    return {"dataset": dataset_id, "tags": list(tags), "pieces": pieces, "windows": windows}


def _index(dataset_id: str, read: ObjectReader) -> Index | None:
    if dataset_id == datasets.BACH_DATASET_ID:
        return bach_index()
    raw = read(datasets.index_key(dataset_id))
    try:
        if raw is None:
            raise BrokenIndexError("missing")
        return parse_index(raw)
    except BrokenIndexError as e:
        # READY promises an index: a dataset whose build wrote none (or a bad one) cannot train.
        logger.error("a READY dataset's index is unusable", dataset_id=dataset_id, cause=str(e))
        raise DatasetStateConflictError(
            f"dataset {dataset_id} is READY but its index is unusable ({e}); upload it again",
            DATASET_FIELD,
        ) from e


def _check_known(dataset_id: str, index: Index, tags: list[str]) -> None:
    """A tag no piece carries is a mistake (a typo, another dataset's folder), not a filter."""
    carried = Counter(tag for entry in index for tag in set(entry["tags"]))
    unknown = [tag for tag in tags if tag not in carried]
    if unknown:
        common = [tag for tag, _ in carried.most_common(TAGS_SUGGESTED)]
        raise InvalidFieldError(
            TAGS_FIELD,
            f"no piece of dataset {dataset_id} carries {', '.join(repr(t) for t in unknown)}; "
            f"its tags include {', '.join(common) or 'none'}",
        )
