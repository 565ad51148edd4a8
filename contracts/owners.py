"""Who owns a job: the caller's identity as API Gateway's IAM authorization gives it
(`requestContext.identity.userArn`), reduced to what stays the same from one call to the next.

- An IAM user (`arn:aws:iam::ACCOUNT:user/PATH/NAME`), a federated user, the account root, or
  anything that is no STS assumed-role ARN (the local stack's `local-user`): the ARN as it is.
- An assumed role, `arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION`: the role,
  `arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE`, so every session of the role shares its jobs.
  The session name is chosen by whoever calls AssumeRole (a CI job's run id, a person's e-mail,
  a timestamp from the SDK), so it is no boundary between callers: anyone who may assume the role
  may call with any session name. Keeping sessions apart would only lose a caller's jobs when its
  next session is named differently. The owner keeps the STS form rather than rebuilding the IAM
  role ARN, because the STS ARN drops the role's path (`role/PATH/ROLE`) and only iam:GetRole
  could restore it; a role name is unique in its account whatever its path, so the STS form names
  one role.
- An IAM Identity Center (SSO) role, `assumed-role/AWSReservedSSO_<permission set>_<id>/<user>`:
  one role serves every person given the permission set, and Identity Center itself sets the
  session name to the person's user name, so here the session is kept: each person owns their own
  jobs.

A role deleted and created again under the same name is the same owner (IAM's own resource
policies would tell the two apart by principal id; this API does not).
"""

from __future__ import annotations

import re

_ASSUMED_ROLE = re.compile(r"^(arn:[\w-]+:sts::\d{12}:assumed-role/)([^/]+)/(.+)$")
# The roles IAM Identity Center creates for a permission set, in every account it serves.
IDENTITY_CENTER_ROLE_PREFIX = "AWSReservedSSO_"


def owner(caller_arn: str) -> str:
    """The owner of the jobs a caller with this identity creates and sees."""
    match = _ASSUMED_ROLE.match(caller_arn)
    if match is None:
        return caller_arn
    prefix, role, _session = match.groups()
    if role.startswith(IDENTITY_CENTER_ROLE_PREFIX):
        return caller_arn
    return f"{prefix}{role}"
