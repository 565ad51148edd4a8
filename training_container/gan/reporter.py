"""Progress of a training job, written where people and the API read it: one reporter, sinks.

- `LocalSink`, always: `progress.jsonl` (one JSON object per event), `training_data.json` and
  the MIDI files, in the output data folder (SM_OUTPUT_DATA_DIR).
- `AwsSink`, when the job's table, bucket and id are set (docs/contracts.md): the job's items
  in DynamoDB and its MIDI in S3. boto3 honours AWS_ENDPOINT_URL, which the local stack points
  at moto, so this is the same code on AWS and on a laptop.

Per-epoch progress is best effort (a lost progress update must not kill an hour of training;
boto3 already retries), the final composition is not (it is the job's product).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from contracts import statuses, storage, timestamps, training
from contracts.datasets import JOB_TRAINING_DATA
from gan import aws_calls

log = logging.getLogger(__name__)

PROGRESS_FILE = "progress.jsonl"
TRAINING_DATA_FILE = "training_data.json"  # the pieces and windows the job trains on


def _dynamo_value(value: Any) -> Any:
    """Floats as Decimal (DynamoDB numbers); NaN and infinities, which it refuses, as null."""
    if isinstance(value, float):
        return Decimal(repr(round(value, 6))) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _dynamo_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_dynamo_value(v) for v in value]
    return value


class Sink(Protocol):
    def reference(self, values: Mapping[str, float]) -> None: ...
    def training_data(self, pieces: int, windows: int) -> None: ...
    def epoch(self, epoch: int, epochs: int, metrics: Mapping[str, float]) -> None: ...
    def sample(self, epoch: int, midi: bytes) -> None: ...
    def compositions(self, midis: Mapping[str, bytes]) -> None: ...


class LocalSink:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def _append(self, event: str, **fields: Any) -> None:
        with open(self.folder / PROGRESS_FILE, "a") as f:
            f.write(json.dumps({"event": event, "time": timestamps.utc_timestamp(), **fields}) + "\n")

    def reference(self, values: Mapping[str, float]) -> None:
        self._append("reference", values=dict(values))

    def training_data(self, pieces: int, windows: int) -> None:
        # A file of its own, not a progress event: progress.jsonl's events are the training's
        # progress, in an order its readers rely on.
        text = json.dumps({"pieces": pieces, "windows": windows}) + "\n"
        (self.folder / TRAINING_DATA_FILE).write_text(text)

    def epoch(self, epoch: int, epochs: int, metrics: Mapping[str, float]) -> None:
        self._append("epoch", epoch=epoch, epochs=epochs, metrics=dict(metrics))

    def sample(self, epoch: int, midi: bytes) -> None:
        path = self.folder / "samples" / f"epoch-{epoch:04d}.mid"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(midi)
        self._append("sample", epoch=epoch, path=str(path.relative_to(self.folder)))

    def compositions(self, midis: Mapping[str, bytes]) -> None:
        for name, midi in midis.items():
            (self.folder / f"{name}.mid").write_bytes(midi)
        self._append("compositions", names=list(midis))


class Stopped(BaseException):
    """The job is being stopped: SIGTERM (a stop, or a spot instance reclaimed), or a job found
    STOPPING at its first report (stopped before its training job existed, so no SIGTERM will
    come). A BaseException, like KeyboardInterrupt, so no `except Exception` on the way
    (best-effort progress) swallows it."""


class AwsSink:
    """The job's items in the jobs table and its MIDI in the artifacts bucket."""

    def __init__(self, table: str, bucket: str, job_id: str, region: str):
        import boto3  # only when the job reports to AWS: a laptop dry run needs no boto3 session

        # The region from the job's Environment (SageMaker sets none in a training container).
        self.table = boto3.resource("dynamodb", region_name=region).Table(table)
        self.s3 = boto3.client("s3", region_name=region)
        self.bucket, self.job_id = bucket, job_id
        self.key = storage.job_key(job_id)
        self._training = False

    def _update_job(
        self,
        attributes: Mapping[str, Any],
        condition: str | None = None,
        condition_values: Mapping[str, Any] | None = None,
    ) -> None:
        """SET each attribute (and updated_at). Names go through placeholders: `reference` and
        `status` are DynamoDB reserved words. A failed condition returns the item as it was
        (`ReturnValuesOnConditionCheckFailure`) in the ClientError's response `Item`, so a caller
        learns why without a read (the training role may not GetItem)."""
        attributes = {**attributes, "updated_at": timestamps.utc_timestamp()}
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values = {f":a{i}": value for i, value in enumerate(attributes.values())}
        # Never create a job item: a job deleted meanwhile stays deleted.
        conditions = [f"attribute_exists({storage.PARTITION_KEY})"]
        if condition:
            conditions.append(condition)
            names["#status"] = "status"
        self.table.update_item(
            Key=self.key,
            UpdateExpression="SET " + ", ".join(f"{n} = {v}" for n, v in zip(names, values, strict=False)),
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=_dynamo_value({**values, **(condition_values or {})}),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )

    def reference(self, values: Mapping[str, float]) -> None:
        self._update_job({"reference": dict(values)})

    def training_data(self, pieces: int, windows: int) -> None:
        """`training_data.pieces` and `.windows` (contracts.datasets.JOB_TRAINING_DATA): what the
        job trains on after its filter. The API wrote the map at submit (with `dataset` and
        `tags`, which stay); only a job item without it (submitted before datasets) gets it
        whole, by a second update that never overwrites one written meanwhile."""
        from botocore.exceptions import ClientError

        names = {"#data": JOB_TRAINING_DATA, "#pieces": "pieces", "#windows": "windows", "#at": "updated_at"}
        values = {":pieces": pieces, ":windows": windows, ":at": timestamps.utc_timestamp()}
        try:
            self.table.update_item(
                Key=self.key,
                UpdateExpression="SET #data.#pieces = :pieces, #data.#windows = :windows, #at = :at",
                ConditionExpression=f"attribute_exists({storage.PARTITION_KEY}) AND attribute_exists(#data)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return
        except ClientError as e:
            if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        self.table.update_item(
            Key=self.key,
            UpdateExpression="SET #data = :data, #at = :at",
            ConditionExpression=f"attribute_exists({storage.PARTITION_KEY}) AND attribute_not_exists(#data)",
            ExpressionAttributeNames={"#data": JOB_TRAINING_DATA, "#at": "updated_at"},
            ExpressionAttributeValues={":data": {"pieces": pieces, "windows": windows}, ":at": values[":at"]},
        )

    def epoch(self, epoch: int, epochs: int, metrics: Mapping[str, float]) -> None:
        from botocore.exceptions import ClientError

        self.table.put_item(
            Item=_dynamo_value(
                {
                    storage.PARTITION_KEY: storage.job_pk(self.job_id),
                    storage.SORT_KEY: storage.epoch_sk(epoch),
                    storage.ITEM_TYPE: storage.EPOCH_ITEM,
                    "epoch": epoch,
                    "metrics": dict(metrics),
                }
            )
        )
        self._update_job({"progress": {"epoch": epoch, "epochs": epochs, "metrics": dict(metrics)}})
        if not self._training:
            # → TRAINING once, and only from where the contract allows it (STARTING); a job
            # already TRAINING (a resumed spot job) or STOPPING keeps its status: a job never
            # moves backwards.
            sources = statuses.ordered(statuses.sources(statuses.TRAINING))
            allowed = {f":from{i}": status for i, status in enumerate(sources)}
            try:
                self._update_job(
                    {"status": statuses.TRAINING.value},
                    condition=f"#status IN ({', '.join(allowed)})",
                    condition_values=allowed,
                )
            except ClientError as e:
                if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                # A stop that came between STARTING and the training job's creation found no
                # training job to stop: end here rather than train a job nobody wants. The item
                # as the failed update found it comes back with the error (the low-level form,
                # {"status": {"S": ...}}: errors are not translated by the resource layer).
                status = (e.response.get("Item") or {}).get("status") or {}
                if status.get("S") == statuses.STOPPING:
                    raise Stopped() from e
            self._training = True

    def sample(self, epoch: int, midi: bytes) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=storage.sample_key(self.job_id, epoch),
            Body=midi,
            ContentType=storage.MIDI_CONTENT_TYPE,
            # The bucket's lifecycle rule expires samples by this tag (docs/contracts.md).
            Tagging=storage.sample_tagging(),
        )

    def compositions(self, midis: Mapping[str, bytes]) -> None:
        for name, midi in midis.items():
            self.s3.put_object(
                Bucket=self.bucket,
                Key=storage.composition_key(self.job_id, name),
                Body=midi,
                ContentType=storage.MIDI_CONTENT_TYPE,
            )
        self._update_job({"compositions": list(midis)})


class Reporter:
    """Sends each event to every sink; per-epoch events are best effort (see the module doc)."""

    def __init__(self, sinks: list[Sink]):
        self.sinks = sinks

    @classmethod
    def from_env(cls, output_dir: Path, environ: Mapping[str, str] = os.environ) -> Reporter:
        sinks: list[Sink] = [LocalSink(output_dir)]
        aws = [environ.get(name) for name in training.REPORTING_ENVIRONMENT]
        if all(aws):
            region = next((environ[n] for n in training.REGION_ENVIRONMENT if environ.get(n)), None)
            if region is None:
                # Every report would fail (NoRegionError), the final composition too, after the
                # whole training: fail now, saying why.
                raise RuntimeError(f"the job reports to AWS but its Environment gives no region "
                                   f"({' or '.join(training.REGION_ENVIRONMENT)}); SageMaker sets none")
            # The IAM check's record of this container's calls (off unless its variable is set):
            # before the sink makes its clients, which inherit the hook from the session.
            aws_calls.install_from_env(aws_calls.TRAINING, environ)
            sinks.append(AwsSink(*aws, region=region))  # type: ignore[arg-type,misc]
        return cls(sinks)

    def _each(self, method: str, *args: Any, best_effort: bool) -> None:
        for sink in self.sinks:
            try:
                getattr(sink, method)(*args)
            except Exception:
                if not best_effort:
                    raise
                log.warning(
                    "progress %s to %s failed; training goes on", method, type(sink).__name__, exc_info=True
                )

    def reference(self, values: Mapping[str, float]) -> None:
        self._each("reference", values, best_effort=True)

    def training_data(self, pieces: int, windows: int) -> None:
        self._each("training_data", pieces, windows, best_effort=True)

    def epoch(self, epoch: int, epochs: int, metrics: Mapping[str, float]) -> None:
        self._each("epoch", epoch, epochs, metrics, best_effort=True)

    def sample(self, epoch: int, midi: bytes) -> None:
        self._each("sample", epoch, midi, best_effort=True)

    def compositions(self, midis: Mapping[str, bytes]) -> None:
        self._each("compositions", midis, best_effort=False)
