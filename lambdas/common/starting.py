"""Starting a job's training execution, for the stream handler and the redrive handler.

One execution per job, named after the job id: a duplicate delivery is harmless, StartExecution
answers ExecutionAlreadyExists, which counts as started. What no retry can fix (a malformed job
record, an execution Step Functions refuses) ends the job for good, conditionally (FAILED with
the reason, or STOPPED if it was stopped meanwhile; a job that has moved on keeps its status),
so no job waits in SUBMITTED for ever. A transient failure is raised for the caller to retry.

The functions log through the caller's logger, so each line carries its handler's service and
Lambda context.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from contracts import datasets, storage, training
from lambdas.common.dal import Executions, JobsRepository
from lambdas.common.env import stream_env
from lambdas.common.errors import ExecutionRefusedError, ExecutionStartError
from lambdas.common.models import Hyperparameters, plain


class MalformedJobRecord(ValueError):
    """A job INSERT without what the state machine needs: retrying cannot fix it."""


def is_job_insert(record: DynamoDBRecord) -> bool:
    """storage.STREAM_FILTER_PATTERN, evaluated here (moto stores filters without applying them)."""
    if record.raw_event.get("eventName") != "INSERT":
        return False
    image = (record.raw_event.get("dynamodb") or {}).get("NewImage") or {}
    return image.get(storage.ITEM_TYPE) == {"S": storage.JOB_ITEM}


def sagemaker_channel(bucket: str, name: str, key: str) -> dict[str, Any]:
    """One of CreateTrainingJob's InputDataConfig channels: everything under `key`, on every host."""
    source = {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/{key}",
              "S3DataDistributionType": "FullyReplicated"}
    return {"ChannelName": name, "DataSource": {"S3DataSource": source}}


def execution_input(job: dict[str, Any], bucket: str) -> dict[str, Any]:
    """What the state machine reads: the job id, the hyperparameters as SageMaker strings (the
    job's tags among them, `contracts.datasets.TAGS_HYPERPARAMETER`, when it filters), and its
    input channels as CreateTrainingJob takes them: the melody always, the built dataset when
    the job trains on a user's (the chorales are baked into the training image). Built here, not
    by a Map state in the definition: a list of any length keeps CreateTrainingJob one task, and
    a Map state would cost every execution of the local stack's interpreter its own parse of
    the definition (`opencomposer/local/stepfunctions_speed.py`)."""
    job = plain(job)
    job_id = job.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise MalformedJobRecord("the job item has no job_id")
    try:
        hyperparameters = Hyperparameters.model_validate(job.get("hyperparameters", {}))
    except ValueError as e:
        raise MalformedJobRecord(f"job {job_id}: bad hyperparameters ({e})") from e
    # A job from before datasets has no training_data: the chorales, unfiltered.
    data = job.get(datasets.JOB_TRAINING_DATA) or {}
    if not isinstance(data, dict):
        raise MalformedJobRecord(f"job {job_id}: bad {datasets.JOB_TRAINING_DATA} {data!r}")
    dataset, tags = data.get("dataset", datasets.BACH_DATASET_ID), data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and datasets.is_tag(t) for t in tags):
        raise MalformedJobRecord(f"job {job_id}: bad tags {tags!r}")
    channels = [sagemaker_channel(bucket, training.MELODY_CHANNEL, storage.melody_key(job_id))]
    if dataset != datasets.BACH_DATASET_ID:
        if not isinstance(dataset, str) or not re.match(datasets.DATASET_ID_PATTERN, dataset):
            raise MalformedJobRecord(f"job {job_id}: bad dataset {dataset!r}")
        channels.append(sagemaker_channel(bucket, datasets.DATASET_CHANNEL, datasets.built_prefix(dataset)))
    parameters = hyperparameters.as_sagemaker()
    if tags:
        parameters[datasets.TAGS_HYPERPARAMETER] = json.dumps(tags)
    return {"job_id": job_id, "hyperparameters": parameters, "input_data_config": channels}


def start_job(job: dict[str, Any], logger: Logger) -> None:
    """Starts the job's execution (already started counts). MalformedJobRecord and
    ExecutionRefusedError end the job for good, then are raised; ExecutionUnavailableError is
    raised as it is, for the caller to retry or settle."""
    try:
        payload = execution_input(job, stream_env().bucket_name)
    except MalformedJobRecord as e:
        logger.error("a job record no retry can start", job_id=job.get("job_id"), cause=str(e))
        end_for_good(job.get("job_id"), f"the job could not be started: {e}", logger)
        raise
    job_id = payload["job_id"]
    try:
        started = Executions(stream_env().state_machine_arn).start(job_id, payload)
    except ExecutionStartError as e:
        logger.error("could not start the execution", job_id=job_id, cause=str(e))
        if isinstance(e, ExecutionRefusedError):
            reason = f"the training workflow could not be started ({e.code}): {e.message}"
            end_for_good(job_id, reason, logger)
        raise
    logger.info("execution started" if started else "execution already started", job_id=job_id)


def end_for_good(job_id: Any, reason: str, logger: Logger) -> None:
    """Ends a job whose execution can never start (`JobsRepository.fail_unstarted`); nothing
    to do without a job id (the record stays reported)."""
    if not isinstance(job_id, str) or not job_id:
        return
    status = JobsRepository(stream_env().table_name).fail_unstarted(job_id, reason)
    if status:
        logger.error("job status changed", job_id=job_id, status=status, cause=reason)
