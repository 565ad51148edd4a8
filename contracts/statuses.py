"""A job's statuses and the only moves between them (docs/contracts.md, "Statuses").

    SUBMITTED → STARTING → TRAINING → COMPLETED
        any of the three → FAILED, or → STOPPING → STOPPED

A job never moves backwards and a final status never changes. Every writer of a status (the api
handler, the state machine's tasks, the training container) makes its move a conditional update
whose condition is `sources(target)`, or a subset of it; a test reads each writer and checks.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    STARTING = "STARTING"
    TRAINING = "TRAINING"
    STOPPING = "STOPPING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"


SUBMITTED, STARTING, TRAINING, STOPPING = (
    JobStatus.SUBMITTED, JobStatus.STARTING, JobStatus.TRAINING, JobStatus.STOPPING
)
COMPLETED, FAILED, STOPPED = JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED

FINAL = frozenset({COMPLETED, FAILED, STOPPED})
# POST /jobs/{id}/stop moves a job to STOPPING only from these (the state machine finishes it).
STOPPABLE = frozenset({SUBMITTED, STARTING, TRAINING})

# target → the statuses a job may reach it from, and who makes the move.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    STARTING: frozenset({SUBMITTED}),  # the state machine, before it creates the training job
    TRAINING: frozenset({STARTING}),  # the training container, at its first epoch
    COMPLETED: frozenset({STARTING, TRAINING}),  # the state machine, after the training job
    # the state machine; the stream handler; the finaliser (an execution ended outside its Catch)
    FAILED: frozenset({SUBMITTED, STARTING, TRAINING}),
    STOPPING: STOPPABLE,  # the api (POST /jobs/{id}/stop)
    STOPPED: frozenset({STOPPING}),  # the state machine; the stream handler; the finaliser
}


def sources(target: JobStatus | str) -> frozenset[JobStatus]:
    """The statuses a job may move to `target` from (empty for SUBMITTED: only created so)."""
    return TRANSITIONS.get(JobStatus(target), frozenset())


def may_move(current: JobStatus | str, target: JobStatus | str) -> bool:
    return JobStatus(current) in sources(target)


def ordered(statuses: frozenset[JobStatus] | set[JobStatus]) -> list[str]:
    """Statuses in the order of the enum, as plain strings (stable for conditions and messages)."""
    return [s.value for s in JobStatus if s in statuses]
