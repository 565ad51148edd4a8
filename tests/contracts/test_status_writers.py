"""Every writer of a job's status moves it only as `contracts.statuses` allows: the api's DAL
(stop, ending a job that cannot start) and the training container's reporter (STARTING →
TRAINING), each tried from every status against moto. The state machine's writes are checked
from its definition (test_statuses_in_the_state_machine.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from contracts import deployment, statuses, storage
from contracts.statuses import JobStatus
from lambdas.common import dal
from lambdas.common.errors import ConditionFailedError

TABLE, BUCKET, JOB_ID = "jobs-contract", "artifacts-contract", "c" * 32


@pytest.fixture()
def jobs() -> Iterator[Any]:
    from moto import mock_aws

    from opencomposer.local.resources import LocalNames, table_spec

    dal.client.cache_clear()
    dal.table.cache_clear()
    with mock_aws():
        boto3.client("dynamodb").create_table(**{**table_spec(LocalNames()), "TableName": TABLE})
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield boto3.resource("dynamodb").Table(TABLE)
    dal.client.cache_clear()
    dal.table.cache_clear()


def _job_in(table: Any, status: JobStatus) -> None:
    table.put_item(Item={**storage.job_key(JOB_ID), storage.ITEM_TYPE: storage.JOB_ITEM, "job_id": JOB_ID,
                         "owner": deployment.LOCAL_OWNER, "status": status.value,
                         "created_at": "2026-12-01T00:00:00.000Z", "updated_at": "2026-12-01T00:00:00.000Z"})


def _status(table: Any) -> JobStatus:
    return JobStatus(table.get_item(Key=storage.job_key(JOB_ID), ConsistentRead=True)["Item"]["status"])


@pytest.mark.parametrize("status", list(JobStatus))
def test_the_api_stops_a_job_exactly_from_the_statuses_the_contract_allows(
    jobs: Any, status: JobStatus
) -> None:
    _job_in(jobs, status)
    repository = dal.JobsRepository(TABLE)

    if statuses.may_move(status, statuses.STOPPING):
        repository.request_stop(JOB_ID, deployment.LOCAL_OWNER)
        assert _status(jobs) == statuses.STOPPING
    else:
        with pytest.raises(ConditionFailedError):
            repository.request_stop(JOB_ID, deployment.LOCAL_OWNER)
        assert _status(jobs) == status


@pytest.mark.parametrize("status", list(JobStatus))
def test_ending_a_job_that_cannot_start_makes_only_allowed_moves(jobs: Any, status: JobStatus) -> None:
    _job_in(jobs, status)

    written = dal.JobsRepository(TABLE).fail_unstarted(JOB_ID, "the workflow could not be started")

    after = _status(jobs)
    if written is None:
        assert after == status
    else:
        assert statuses.may_move(status, after) and after in statuses.FINAL
    # A job that never started is always ended: SUBMITTED fails, a stop before the start stops.
    assert (written is not None) == (status in (statuses.SUBMITTED, statuses.STOPPING))


@pytest.mark.parametrize("status", list(JobStatus))
def test_the_container_moves_a_job_to_training_exactly_from_the_allowed_statuses(
    jobs: Any, status: JobStatus
) -> None:
    from gan.reporter import AwsSink, Stopped

    _job_in(jobs, status)
    sink = AwsSink(TABLE, BUCKET, JOB_ID, region=deployment.LOCAL_REGION)

    try:
        sink.epoch(1, 2, {"generator_loss": 1.0})
    except Stopped:
        # A job stopped before its training job existed: the container ends instead of training.
        assert status == statuses.STOPPING
    after = _status(jobs)
    assert after == (statuses.TRAINING if statuses.may_move(status, statuses.TRAINING) else status)
