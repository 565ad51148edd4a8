"""The dataset build function: S3 ObjectCreated events of dataset uploads
(`contracts.datasets.upload_key`) → the built pieces, the index and the report, and the dataset
item READY (or FAILED with a reason a person can act on).

Each record: the item moves WAITING_FOR_UPLOAD → BUILDING by a conditional update, so a
duplicate event (S3 delivers at least once; Lambda retries an asynchronous invocation) builds
once; the zip is read to /tmp and built by the training's own reader (`gan.datasets.build_zip`);
whatever happens the item ends READY or FAILED, and the zip is deleted. An upload for a dataset
that does not exist (never created, or deleted meanwhile) is deleted unread.

It imports the `gan` package (numpy, mido), so on AWS it is the compose function's container
image with this handler as its command (`contracts.functions.DATASETS`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from contracts import datasets, functions
from lambdas.common.dal import ArtifactsStore
from lambdas.common.dal.datasets import DatasetsRepository
from lambdas.common.env import ApiEnv

logger = Logger(service="opencomposer-datasets")

# What the build leaves itself, of the function's time, to record how it ended: a build still
# running then is given up and the dataset ends FAILED, never left BUILDING.
_END_RESERVE_S = 30.0
# A dataset found BUILDING for longer than the function can run was abandoned by a build that
# died (out of memory, killed): the next event for it ends it FAILED.
_ABANDONED_AFTER_S = functions.DATASETS.timeout_s + 60
TOO_LONG = (
    "the build did not finish within the function's time limit: split the collection into "
    "smaller zips (fewer or shorter files)"
)
ABANDONED = "the build stopped unexpectedly (out of time or memory): try again with a smaller zip"
UNEXPECTED = "the build failed unexpectedly ({error}); upload the zip again, or report it if it fails again"


def _env() -> ApiEnv:
    """The table and the bucket, as the api reads them (`contracts.functions.DATASETS`)."""
    return ApiEnv.model_validate({name: os.environ.get(name, "") for name in functions.DATASETS.environment})


class DatasetBuild:
    def __init__(self, repository: DatasetsRepository, artifacts: ArtifactsStore, s3: Any,
                 work_root: str | None = None) -> None:
        self._datasets = repository
        self._artifacts = artifacts
        self._s3 = s3
        self._work_root = work_root

    def handle(self, key: str, seconds_left: float) -> str:
        """One uploaded object; returns what was done (for the log and the tests)."""
        dataset_id = datasets.dataset_id_of_upload(key)
        if dataset_id is None:
            logger.warning("not a dataset upload; ignored", key=key)
            return "ignored"
        if not self._datasets.start_build(dataset_id):
            return self._not_waiting(dataset_id, key)
        logger.info("building", dataset_id=dataset_id)
        report, reason = self._build_in_time(dataset_id, key, seconds_left - _END_RESERVE_S)
        # The item first: a dataset must never stay BUILDING for want of a zip's deletion.
        self._datasets.end_build(dataset_id, report, reason)
        try:
            self._artifacts.delete(key)
        except Exception:  # noqa: BLE001 - the zip stays under the dataset's prefix; its DELETE removes it
            logger.exception("could not delete the upload", dataset_id=dataset_id)
        status = datasets.READY if report is not None else datasets.FAILED
        logger.info("built", dataset_id=dataset_id, status=status, failure_reason=reason,
                    **({field: report[field] for field in ("files", "accepted", "pieces")} if report else {}))
        return status

    def _not_waiting(self, dataset_id: str, key: str) -> str:
        item = self._datasets.find(dataset_id)
        if item is None:
            logger.warning("upload for an unknown or deleted dataset; deleted", dataset_id=dataset_id)
            self._artifacts.delete(key)
            return "deleted"
        if item["status"] == datasets.BUILDING:
            if _age_s(item["updated_at"]) > _ABANDONED_AFTER_S and self._datasets.end_build(
                    dataset_id, None, ABANDONED):
                logger.error("abandoned build ended FAILED", dataset_id=dataset_id)
                self._artifacts.delete(key)
                return datasets.FAILED
            logger.info("duplicate event while building; ignored", dataset_id=dataset_id)
            return "duplicate"
        # READY or FAILED: a duplicate of the event that built it, or the presigned form used
        # again: the dataset is built once, so a second zip is not kept.
        logger.info("dataset already built; upload deleted", dataset_id=dataset_id, status=item["status"])
        self._artifacts.delete(key)
        return "duplicate"

    def _build_in_time(
        self, dataset_id: str, key: str, limit_s: float
    ) -> tuple[dict[str, Any] | None, str | None]:
        """(report, None) or (None, failure reason); a build still running after `limit_s` is
        given up (the thread is left to the end of the invocation)."""
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["report"] = self._build(dataset_id, key)
            except Exception as e:  # noqa: BLE001 - every failure ends the dataset FAILED
                outcome["error"] = e

        thread = threading.Thread(target=run, name=f"build-{dataset_id}", daemon=True)
        thread.start()
        thread.join(timeout=max(1.0, limit_s))
        if thread.is_alive():
            logger.error("build out of time", dataset_id=dataset_id)
            return None, TOO_LONG
        if "report" in outcome:
            return outcome["report"], None
        return None, _reason(outcome["error"])

    def _build(self, dataset_id: str, key: str) -> dict[str, Any]:
        from gan.datasets import build_zip  # numpy and mido: imported where the build needs them

        work = Path(tempfile.mkdtemp(prefix=f"dataset-{dataset_id}-", dir=self._work_root))
        try:
            zip_path, out_dir = work / "collection.zip", work / "built"
            self._s3.download_file(self._artifacts.bucket, key, str(zip_path))
            report = build_zip(zip_path, out_dir, cache_dir=work / "cache")
            self._s3.upload_file(str(out_dir / "pieces.npz"), self._artifacts.bucket,
                                 datasets.pieces_key(dataset_id))
            self._s3.upload_file(str(out_dir / "index.json"), self._artifacts.bucket,
                                 datasets.index_key(dataset_id),
                                 ExtraArgs={"ContentType": "application/json"})
            self._artifacts.put(datasets.report_key(dataset_id), json.dumps(report).encode(),
                                content_type="application/json")
            return report
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _reason(error: Exception) -> str:
    from gan.datasets import ArchiveError

    if isinstance(error, ArchiveError):
        return str(error)  # the archive as a whole refused, in the builder's words
    logger.exception("build failed", exc_info=error)
    return UNEXPECTED.format(error=type(error).__name__)


def _age_s(timestamp: str) -> float:
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return (datetime.now(UTC) - moment).total_seconds()


def _records(event: dict[str, Any]) -> list[tuple[str, str]]:
    """(bucket, key) of each ObjectCreated record; S3 sends keys URL-encoded."""
    found = []
    for record in event.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        found.append((record["s3"]["bucket"]["name"], unquote_plus(record["s3"]["object"]["key"])))
    return found


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from lambdas.common.dal import client

    env = _env()
    build = DatasetBuild(DatasetsRepository(env.table_name), ArtifactsStore(env.bucket_name), client("s3"))
    done = []
    for bucket, key in _records(event):
        if bucket != env.bucket_name:
            logger.warning("event from another bucket; ignored", bucket=bucket, key=key)
            continue
        done.append(build.handle(key, context.get_remaining_time_in_millis() / 1000))
    return {"done": done}
