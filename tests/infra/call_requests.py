"""A recorded AWS call (`opencomposer.local.aws_calls`) → the IAM requests AWS authorizes for it:
action, resource ARN in AWS's own form, and the condition keys the template's statements read.

One call can be several requests (a DeleteObjects is a DeleteObject per key, a transaction an
action per item, a CreateTrainingJob also passes its role). An operation not taught here is an
error naming it: a new call must be mapped, not skipped.

Local names are turned into the deployed stack's where the two differ by design: training jobs
are named `<stack's job prefix>-<job id>` on AWS and `<local prefix>-<job id>` locally.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from iam_policy import Request

from contracts import datasets, storage


@dataclass(frozen=True)
class Place:
    """Where the calls go: the local region and account, and the training job names."""

    region: str
    account: str
    local_job_prefix: str
    deployed_job_prefix: str

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def training_job(self, name: str) -> str:
        if name.startswith(f"{self.local_job_prefix}-"):
            name = self.deployed_job_prefix + name[len(self.local_job_prefix):]
        # SageMaker's ARNs carry the name in lower case, whatever the case it was created with
        return self.arn("sagemaker", f"training-job/{name.lower()}")


_LEADING_KEYS = "dynamodb:LeadingKeys"


def _scalar(value: Any) -> str:
    """A key attribute's value, low-level ({"S": "JOB#..."}) or plain."""
    if isinstance(value, Mapping) and len(value) == 1:
        return str(next(iter(value.values())))
    return str(value)


def _leading_key(item_or_key: Mapping[str, Any]) -> list[str]:
    return [_scalar(item_or_key[storage.PARTITION_KEY])] if storage.PARTITION_KEY in item_or_key else []


def _query_leading_keys(params: Mapping[str, Any]) -> list[str]:
    """The partition key value a Query's key condition fixes (`#pk = :v`)."""
    key = storage.OWNER_INDEX_PARTITION_KEY if params.get("IndexName") else storage.PARTITION_KEY
    names = params.get("ExpressionAttributeNames") or {}
    values = params.get("ExpressionAttributeValues") or {}
    for name, value in re.findall(r"(#?\w+)\s*=\s*(:\w+)", str(params.get("KeyConditionExpression", ""))):
        if names.get(name, name) == key and value in values:
            return [_scalar(values[value])]
    return []


def _table(place: Place, name: str, index: str | None = None) -> str:
    return place.arn("dynamodb", f"table/{name}" + (f"/index/{index}" if index else ""))


def _dynamodb(place: Place, operation: str, p: Mapping[str, Any]) -> list[Request]:
    item_actions = {"GetItem", "PutItem", "UpdateItem", "DeleteItem"}
    if operation in item_actions:
        keys = _leading_key(p.get("Key") or p.get("Item") or {})
        return [Request(f"dynamodb:{operation}", _table(place, p["TableName"]), {_LEADING_KEYS: keys})]
    if operation == "Query":
        return [Request("dynamodb:Query", _table(place, p["TableName"], p.get("IndexName")),
                        {_LEADING_KEYS: _query_leading_keys(p)})]
    if operation == "Scan":
        return [Request("dynamodb:Scan", _table(place, p["TableName"], p.get("IndexName")))]
    if operation == "BatchWriteItem":
        found = []
        for table, writes in p["RequestItems"].items():
            keys = [k for w in writes for k in _leading_key(
                (w.get("PutRequest") or {}).get("Item") or (w.get("DeleteRequest") or {}).get("Key") or {})]
            found.append(Request("dynamodb:BatchWriteItem", _table(place, table), {_LEADING_KEYS: keys}))
        return found
    if operation in ("TransactWriteItems", "TransactGetItems"):
        # IAM authorizes each item's own action; a transaction has no action of its own
        actions = {"ConditionCheck": "ConditionCheckItem", "Put": "PutItem", "Update": "UpdateItem",
                   "Delete": "DeleteItem", "Get": "GetItem"}
        found = []
        for entry in p["TransactItems"]:
            ((kind, item),) = entry.items()
            keys = _leading_key(item.get("Key") or item.get("Item") or {})
            found.append(Request(f"dynamodb:{actions[kind]}", _table(place, item["TableName"]),
                                 {_LEADING_KEYS: keys}))
        return found
    if operation in ("DescribeStream", "GetShardIterator"):
        return [Request(f"dynamodb:{operation}", p["StreamArn"])]
    if operation == "GetRecords":  # a shard iterator begins with its stream's ARN, then "|"
        return [Request("dynamodb:GetRecords", p["ShardIterator"].split("|", 1)[0])]
    raise KeyError(operation)


def _s3(place: Place, operation: str, p: Mapping[str, Any], presigned: bool = False) -> list[Request]:
    def obj(key: str) -> str:
        return f"arn:aws:s3:::{p['Bucket']}/{key}"

    if operation == "CreateBucket" and presigned:
        # botocore's generate_presigned_post serializes a CreateBucket of the bucket for the form's
        # URL; S3 authorizes the POST made with it as s3:PutObject of the key its policy names,
        # which the record does not carry. This project's one presigned POST is a dataset's upload
        # (POST /datasets): `contracts.datasets.upload_key`, the id made at run time.
        return [Request("s3:PutObject", obj(datasets.upload_key("*")))]
    if operation in ("GetObject", "HeadObject"):  # HeadObject is authorized as GetObject
        return [Request("s3:GetObject", obj(p["Key"]))]
    if operation in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        tags = [k for k, _ in parse_qsl(p.get("Tagging") or "")]
        context = {"s3:RequestObjectTagKeys": tags} if tags else {}
        found = [Request("s3:PutObject", obj(p["Key"]), context)]
        if tags:  # a PutObject that tags its object needs s3:PutObjectTagging too
            found.append(Request("s3:PutObjectTagging", obj(p["Key"]), context))
        return found
    if operation == "AbortMultipartUpload":
        return [Request("s3:AbortMultipartUpload", obj(p["Key"]))]
    if operation == "DeleteObject":
        return [Request("s3:DeleteObject", obj(p["Key"]))]
    if operation == "DeleteObjects":
        return [Request("s3:DeleteObject", obj(o["Key"])) for o in p["Delete"]["Objects"]]
    if operation in ("ListObjectsV2", "ListObjects"):
        context = {"s3:prefix": p["Prefix"]} if "Prefix" in p else {}
        return [Request("s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}", context)]
    raise KeyError(operation)


def _states(place: Place, operation: str, p: Mapping[str, Any]) -> list[Request]:
    if operation in ("StartExecution", "StartSyncExecution", "ListExecutions"):
        return [Request(f"states:{operation}", p["stateMachineArn"])]
    if operation in ("DescribeExecution", "StopExecution", "GetExecutionHistory"):
        return [Request(f"states:{operation}", p["executionArn"])]
    raise KeyError(operation)


def _sagemaker(place: Place, operation: str, p: Mapping[str, Any]) -> list[Request]:
    if operation in ("CreateTrainingJob", "DescribeTrainingJob", "StopTrainingJob"):
        job = place.training_job(p["TrainingJobName"])
        found = [Request(f"sagemaker:{operation}", job)]
        if operation == "CreateTrainingJob":
            if p.get("Tags"):
                found.append(Request("sagemaker:AddTags", job))
            # the job runs as its role: the caller passes that role to SageMaker
            passed = {"iam:PassedToService": "sagemaker.amazonaws.com"}
            found.append(Request("iam:PassRole", p["RoleArn"], passed))
        return found
    if operation == "ListTags":
        return [Request("sagemaker:ListTags", p["ResourceArn"])]
    raise KeyError(operation)


_SERVICES: dict[str, Callable[[Place, str, Mapping[str, Any]], list[Request]]] = {
    "dynamodb": _dynamodb, "s3": _s3, "states": _states, "sagemaker": _sagemaker,
}


def requests_of(place: Place, call: Mapping[str, Any]) -> list[Request]:
    """The IAM requests of one recorded call; KeyError names a call this module must learn."""
    service, operation = call["signing_name"], call["operation"]
    try:
        if service == "s3":
            found = _s3(place, operation, call["params"], presigned=bool(call.get("presigned")))
        else:
            found = _SERVICES[service](place, operation, call["params"])
    except KeyError as e:
        raise KeyError(f"{call['component']} calls {call['service']}.{operation}: tests/infra/"
                       f"call_requests.py does not know its IAM action and resource ({e})") from e
    # the SDK calls AWS over TLS only (the buckets deny anything else)
    return [Request(r.action, r.resource, {**r.context, "aws:SecureTransport": "true"}) for r in found]
