"""POST /jobs/{job_id}/compositions: a finished job's generator accompanies a melody.

The melody is checked (a MIDI file at all, with notes, not too long) and the instruments are
resolved before the model is fetched, so a bad request costs nothing and stores nothing. The
same melody, model, seed, temperature and instruments always give the same MIDI file.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from contracts import compositions, names, statuses, storage
from contracts.timestamps import utc_timestamp
from gan import metrics as gan_metrics
from gan import midi as gan_midi
from gan.generate import accompaniment
from lambdas.common import melodies
from lambdas.common.compositions import composition_to_api, model_key
from lambdas.common.dal import ArtifactsStore, CompositionsRepository, JobsRepository
from lambdas.common.errors import InvalidFieldError, JobNotFoundError, JobStateConflictError
from lambdas.common.models import CreateCompositionRequest, plain
from lambdas.compose.model_store import ModelStore

logger = Logger(service="opencomposer-compose")


def read_melody(request: CreateCompositionRequest) -> tuple[bytes, dict[str, Any], gan_midi.Melody]:
    """The melody's MIDI bytes, what the composition records of it, and the melody as the model
    reads it; InvalidFieldError naming `melody.sample` or `melody.midi_base64` for a file that
    breaks a rule of `contracts.midi` (the rules a training job's upload is checked by): not MIDI,
    no notes (drum tracks do not count), over `compositions.MAX_BARS` long, ..."""
    if request.melody.sample is not None:
        data, record, field = (
            melodies.render(melodies.SAMPLES[request.melody.sample]),
            {"sample": request.melody.sample},
            "melody.sample",
        )
    else:
        field = melodies.UPLOAD_FIELD
        try:
            data = base64.b64decode(request.melody.midi_base64 or "", validate=True)
        except (binascii.Error, ValueError) as e:
            raise InvalidFieldError(field, "not valid base64") from e
        record = {"upload": True, "notes": 0}
    try:
        melody = gan_midi.read_melody(data, max_bars=compositions.MAX_BARS)
    except gan_midi.MidiError as e:
        raise InvalidFieldError(field, str(e)) from e
    if "upload" in record:
        record["notes"] = len(melody.notes)
    return data, record, melody


def _number(value: float) -> Decimal | None:
    """A metric for DynamoDB (no floats, no NaN): a Decimal, or None where there is no value."""
    return None if not math.isfinite(value) else Decimal(repr(float(value)))


class ComposeService:
    def __init__(
        self,
        jobs: JobsRepository,
        compositions_table: CompositionsRepository,
        artifacts: ArtifactsStore,
        models: ModelStore,
        bucket: str,
    ) -> None:
        self._jobs = jobs
        self._compositions = compositions_table
        self._artifacts = artifacts
        self._models = models
        self._bucket = bucket

    def compose(self, owner: str, job_id: str, request: CreateCompositionRequest) -> dict[str, Any]:
        if not names.is_job_id(job_id):
            raise JobNotFoundError(job_id)
        job = self._jobs.get_job(job_id, owner)
        if job["status"] != statuses.COMPLETED:
            raise JobStateConflictError(
                f"job {job_id} is {job['status']}: only a COMPLETED job has a model to compose with"
            )
        if self._compositions.count(job_id) >= compositions.MAX_PER_JOB:
            raise JobStateConflictError(
                f"job {job_id} keeps {compositions.MAX_PER_JOB} compositions already: delete some first"
            )
        key = model_key(job, self._bucket)
        data, melody_record, _ = read_melody(request)
        voices = request.voices()

        generator = self._models.get(key)
        piece = accompaniment(generator, data, request.seed, voices, request.temperature)

        reference = plain(job.get("reference", {}))
        values = gan_metrics.describe([piece])
        if reference:
            values["similarity"] = gan_metrics.similarity(values, reference)
        composition_id = names.new_composition_id()
        default_name = f"{melody_record.get('sample', 'upload')} seed {request.seed}"
        item = {
            "composition_id": composition_id,
            "job_id": job_id,
            "name": request.name or default_name,
            "created_at": utc_timestamp(),
            "melody": melody_record,
            "seed": request.seed,
            "temperature": Decimal(repr(request.temperature)),
            "instruments": request.instruments,
            "bars": piece.bars,
            "metrics": {name: _number(value) for name, value in values.items()},
            "reference": json.loads(json.dumps(reference), parse_float=Decimal),
        }
        # The file first: an item always has its file; if the item cannot be written (the job was
        # deleted meanwhile), the file goes again.
        midi_key = storage.composed_key(job_id, composition_id)
        self._artifacts.put(midi_key, piece.midi)
        try:
            self._compositions.put(job, item)
        except Exception:
            self._artifacts.delete(midi_key)
            raise
        url, expires_at = self._artifacts.presigned_get(midi_key)
        logger.info(
            "composed",
            job_id=job_id,
            composition_id=composition_id,
            bars=piece.bars,
            seed=request.seed,
            melody=melody_record,
        )
        return composition_to_api(item, url, expires_at)
