"""What each route does, between the HTTP layer (handler.py) and data access (`lambdas/common/dal/`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from contracts import names, statuses, storage
from contracts.datasets import JOB_TRAINING_DATA
from contracts.timestamps import utc_timestamp
from lambdas.common import datasets, melodies
from lambdas.common.compositions import composition_to_api, model_key
from lambdas.common.dal import ArtifactsStore, CompositionsRepository, JobsRepository, Training
from lambdas.common.dal.compositions import PHASE_COMPOSED, PHASE_TRAINING, decode_token, encode_token
from lambdas.common.dal.datasets import get_dataset
from lambdas.common.errors import (
    CompositionNotFoundError,
    ConditionFailedError,
    IdempotencyKeyReusedError,
    InvalidFieldError,
    JobNotFoundError,
    JobStateConflictError,
    ServiceUnavailableError,
)
from lambdas.common.models import CreateJobRequest, ListCompositionsQuery, ListJobsQuery, job_to_api, plain

logger = Logger(service="opencomposer-api")
TrainingOutputs = list[tuple[str, str, datetime]]  # (name, key, written); `list` is a method below


# Writes of a job whose key turned out taken, each followed by a look at the key's first job.
_WRITE_ATTEMPTS = 2


class JobService:
    def __init__(self, repository: JobsRepository, compositions_table: CompositionsRepository,
                 artifacts: ArtifactsStore, training: Training,
                 dataset_lookup: datasets.DatasetLookup = get_dataset) -> None:
        self._jobs = repository
        self._compositions = compositions_table
        self._artifacts = artifacts
        self._training = training
        self._dataset_lookup = dataset_lookup

    def _job(self, job_id: str, owner: str) -> dict[str, Any]:
        if not names.is_job_id(job_id):
            raise JobNotFoundError(job_id)
        return self._jobs.get_job(job_id, owner)

    # --- POST /jobs --------------------------------------------------------------------------
    def create(self, owner: str, request: CreateJobRequest, idempotency_key: str | None) -> dict[str, Any]:
        request_hash = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
        # A key is not looked up first: the job and its key are written in one transaction that
        # fails if the key exists, and only then is the first job answered. A new key (nearly
        # every request: the CLI sends one with each submit) costs no extra read.
        midi, melody = _melody(request)
        # Before anything is written: a dataset or a filter that cannot train refuses the job.
        training_data = datasets.training_data(owner, request.dataset, request.tags,
                                               lookup=self._dataset_lookup, read=self._artifacts.get)
        job_id = uuid.uuid4().hex
        now = utc_timestamp()
        job: dict[str, Any] = {
            "job_id": job_id,
            "owner": owner,
            "status": statuses.SUBMITTED.value,
            "created_at": now,
            "updated_at": now,
            # Decimals: DynamoDB takes no floats.
            "hyperparameters": json.loads(request.hyperparameters.model_dump_json(), parse_float=Decimal),
            "melody": melody,
            JOB_TRAINING_DATA: training_data,
        }
        if request.name is not None:
            job["name"] = request.name
        if idempotency_key:
            job["idempotency_key"] = idempotency_key

        # The melody first: the job's INSERT starts training, which reads it.
        melody_key = storage.melody_key(job_id)
        self._artifacts.put(melody_key, midi)
        idempotency = {"key": idempotency_key, "request_hash": request_hash} if idempotency_key else None
        for _ in range(_WRITE_ATTEMPTS):
            if self._jobs.put_job(job, idempotency):
                break
            # The key was used before (or by a concurrent POST that won): answer with its job.
            replay = self._replay(owner, idempotency_key or "", request_hash)
            if replay is not None:
                self._artifacts.delete(melody_key)  # keep nothing of ours
                return replay
            # ... unless its job went meanwhile (deleted with its key): write ours after all.
        else:
            self._artifacts.delete(melody_key)
            raise ServiceUnavailableError(
                f"the {names.IDEMPOTENCY_HEADER}'s first job changed while this one was written; try again"
            )
        logger.info("job submitted", job_id=job_id, status=statuses.SUBMITTED.value, melody=melody,
                    training_data=training_data)
        return job_to_api(job)

    def _replay(self, owner: str, key: str, request_hash: str) -> dict[str, Any] | None:
        marker = self._jobs.get_idempotency(owner, key)
        if marker is None:
            return None
        if marker.get("request_hash") != request_hash:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was used with a different request body", field=names.IDEMPOTENCY_HEADER
            )
        logger.info("idempotent replay", job_id=marker["job_id"])
        return job_to_api(self._job(marker["job_id"], owner))

    # --- GET ---------------------------------------------------------------------------------
    def get(self, owner: str, job_id: str) -> dict[str, Any]:
        return job_to_api(self._job(job_id, owner))

    def list(self, owner: str, query: ListJobsQuery) -> dict[str, Any]:
        status = query.status.value if query.status else None
        items, token = self._jobs.list_jobs(owner, status, query.limit, query.next_token)
        return {"jobs": [job_to_api(item) for item in items], "next_token": token}

    def metrics(self, owner: str, job_id: str) -> dict[str, Any]:
        job = self._job(job_id, owner)
        items = self._jobs.list_epochs(job_id)
        epochs = [{"epoch": item["epoch"], **item.get("metrics", {})} for item in items]
        return plain({"job_id": job_id, "epochs": epochs, "reference": job.get("reference", {})})

    def model(self, owner: str, job_id: str) -> dict[str, Any]:
        job = self._job(job_id, owner)
        if job["status"] != statuses.COMPLETED or not job.get("model_artifact"):
            raise JobStateConflictError(f"job {job_id} is {job['status']}: a model comes with COMPLETED")
        url, expires_at = self._artifacts.presigned_get(model_key(job, self._artifacts.bucket))
        return {"job_id": job_id, "url": url, "expires_at": expires_at}

    # --- the job's MIDI: the caller's compositions, then the training's outputs ---------------
    def compositions(self, owner: str, job_id: str, query: ListCompositionsQuery) -> dict[str, Any]:
        """Newest first: every composition the caller made (they come after the training, which
        they need), then the training's `final` and its epoch samples, the latest epoch first."""
        job = self._job(job_id, owner)
        phase, at = (decode_token(query.next_token, job_id) if query.next_token
                     else (PHASE_COMPOSED, None))
        listed: list[dict[str, Any]] = []
        token = None
        if phase == PHASE_COMPOSED:
            items, after = self._compositions.page(job_id, query.limit, at if isinstance(at, str) else None)
            for item in items:
                key = storage.composed_key(job_id, item["composition_id"])
                url, expires_at = self._artifacts.presigned_get(key)
                listed.append(composition_to_api(item, url, expires_at))
            if after is not None:
                token = encode_token(job_id, PHASE_COMPOSED, after)
            phase, at = PHASE_TRAINING, 0
        if token is None and len(listed) < query.limit:
            outputs = self._training_outputs(job)
            skip = at if isinstance(at, int) else 0
            shown = outputs[skip : skip + query.limit - len(listed)]
            for name, key, written in shown:
                url, expires_at = self._artifacts.presigned_get(key)
                listed.append({"composition_id": name, "job_id": job_id, "kind": "training", "name": name,
                               "url": url, "expires_at": expires_at, "created_at": utc_timestamp(written)})
            if skip + len(shown) < len(outputs):
                token = encode_token(job_id, PHASE_TRAINING, skip + len(shown))
        elif token is None:
            token = encode_token(job_id, PHASE_TRAINING, 0)
        return {"compositions": listed, "next_token": token}

    def _training_outputs(self, job: dict[str, Any]) -> TrainingOutputs:
        """(name, key, written) of what the training wrote: `final` first, then the samples of
        the latest epochs first."""
        job_id = job["job_id"]
        final = dict(self._artifacts.objects(storage.compositions_prefix(job_id)))
        found = [(name, storage.composition_key(job_id, name)) for name in job.get("compositions", [])]
        outputs = [(name, key, final[key]) for name, key in found if key in final]
        samples = sorted(self._artifacts.objects(storage.samples_prefix(job_id)), reverse=True)
        outputs += [(key.rsplit("/", 1)[1].removesuffix(".mid"), key, written) for key, written in samples]
        return outputs

    def delete_composition(self, owner: str, job_id: str, composition_id: str) -> None:
        self._job(job_id, owner)
        if names.is_training_output(composition_id):
            raise JobStateConflictError(
                f"{composition_id!r} is the training's own output: it goes with the job "
                f"(DELETE /jobs/{job_id})"
            )
        known = names.is_composition_id(composition_id)
        if not known or not self._compositions.delete(job_id, composition_id):
            raise CompositionNotFoundError(job_id, composition_id)
        self._artifacts.delete(storage.composed_key(job_id, composition_id))
        logger.info("composition deleted", job_id=job_id, composition_id=composition_id)

    # --- POST /jobs/{id}/stop ----------------------------------------------------------------
    def stop(self, owner: str, job_id: str) -> dict[str, Any]:
        job = self._job(job_id, owner)
        if job["status"] == statuses.STOPPING:
            return {"job_id": job_id, "status": statuses.STOPPING.value}
        try:
            updated = self._jobs.request_stop(job_id, owner)
        except ConditionFailedError as e:
            # Finished (or moved on) between our read and the update.
            raise JobStateConflictError(f"job {job_id} has already finished") from e
        logger.info("job status changed", job_id=job_id, previous=job["status"], status=updated["status"])
        # MarkStarting names the training job; without a name there is nothing running to stop
        # and the state machine sees STOPPING before it creates one.
        name = updated.get("training_job_name")
        if name:
            stopped = self._training.stop(name)
            logger.info("training stop requested", job_id=job_id, training_job_name=name, running=stopped)
        return {"job_id": job_id, "status": statuses.STOPPING.value}

    # --- DELETE /jobs/{id} -------------------------------------------------------------------
    def delete(self, owner: str, job_id: str) -> None:
        job = self._job(job_id, owner)
        if job["status"] not in statuses.FINAL:
            raise JobStateConflictError(f"job {job_id} is {job['status']}: stop it and wait until it ends")
        self._artifacts.delete_prefix(storage.job_prefix(job_id))
        self._jobs.delete_job(job)
        logger.info("job deleted", job_id=job_id)


def _melody(request: CreateJobRequest) -> tuple[bytes, dict[str, Any]]:
    """The melody as MIDI bytes for the `melody` channel, and what the job item records of it."""
    if request.melody.sample is not None:
        return melodies.render(melodies.SAMPLES[request.melody.sample]), {"sample": request.melody.sample}
    try:
        midi = base64.b64decode(request.melody.midi_base64 or "", validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidFieldError(melodies.UPLOAD_FIELD, "not valid base64") from e
    return midi, {"upload": True, "notes": melodies.count_notes(midi)}
