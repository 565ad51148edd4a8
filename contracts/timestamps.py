"""The API's one timestamp form: ISO-8601 in UTC with milliseconds, `2026-11-27T15:00:00.000Z`.

Whoever writes a time into a job (the api handler, the training container, the state machine's
`$$.State.EnteredTime`) may write its own ISO form; readers show it through `iso_utc`.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_timestamp(moment: datetime | None = None) -> str:
    """`moment` (now, unless given) in the API's form."""
    moment = datetime.now(UTC) if moment is None else moment
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def iso_utc(timestamp: str) -> str:
    """A stored timestamp in the API's form, whoever wrote it (moto's interpreter writes
    `...+00:00` with microseconds); text that is no timestamp comes back as it is."""
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    return utc_timestamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
