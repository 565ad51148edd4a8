"""The events AWS hands a Lambda function, as plain dicts: an API Gateway REST proxy event and
a DynamoDB stream record. The local stack builds them for the real handlers, the redrive handler
rebuilds stream records it reads back, and the tests call the handlers with them: one shape each.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from contracts import deployment, routes

# Bodies API Gateway passes as text; any other media type arrives base64-encoded.
_TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded")
_ROUTE_PATTERNS = [(path, routes.pattern(path)) for path in routes.resources()]


def match_resource(path: str) -> tuple[str, dict[str, str] | None]:
    """The API resource a path belongs to and its path parameters (`/{proxy+}` when none does)."""
    for resource, pattern in _ROUTE_PATTERNS:
        m = pattern.match(path)
        if m:
            return resource, (m.groupdict() or None)
    return "/{proxy+}", {"proxy": path.lstrip("/")}


def api_gateway_event(
    method: str,
    raw_path: str,
    headers: Mapping[str, str] | list[tuple[str, str]],
    body: bytes,
    *,
    stage: str,
    owner: str | None = deployment.LOCAL_OWNER,
    account_id: str = deployment.LOCAL_ACCOUNT,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An API Gateway REST API (v1) proxy event, as `AWS_PROXY` integrations receive it. IAM
    authorization fills `requestContext.identity` from the caller's signature; here `owner`."""
    split = urlsplit(raw_path)
    path = split.path or "/"
    resource, path_parameters = match_resource(path)
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    single_headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in pairs:
        single_headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    multi_query = parse_qs(split.query, keep_blank_values=True)
    single_query = {k: v[-1] for k, v in multi_query.items()}
    content_type = next((v for k, v in pairs if k.lower() == "content-type"), "")
    text_body: str | None
    is_base64 = False
    if not body:
        text_body = None
    elif not content_type or content_type.startswith(_TEXT_TYPES):
        try:
            text_body = body.decode("utf-8")
        except UnicodeDecodeError:
            text_body, is_base64 = base64.b64encode(body).decode(), True
    else:
        text_body, is_base64 = base64.b64encode(body).decode(), True
    now = time.time()
    user_agent = next((v for k, v in pairs if k.lower() == "user-agent"), None)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "accountId": account_id,
            "apiId": "local",
            "domainName": single_headers.get("Host", "127.0.0.1"),
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "resourceId": "local",
            "resourcePath": resource,
            "stage": stage,
            "identity": {
                "accountId": account_id,
                "caller": owner,
                "user": owner,
                "userArn": owner,
                "accessKey": None,
                "sourceIp": source_ip,
                "userAgent": user_agent,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
            },
        },
        "body": text_body,
        "isBase64Encoded": is_base64,
    }


def stream_record(record: Mapping[str, Any], stream_arn: str, region: str | None = None) -> dict[str, Any]:
    """A DynamoDB stream record (from GetRecords, or moto's own) as Lambda delivers it to the
    stream handler: the creation time as epoch seconds (boto3 parses it into a datetime), and the
    event source's ARN and region added."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    delivered = {
        key: record[key]
        for key in ("eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "userIdentity")
        if key in record
    }
    if region is not None:
        delivered["awsRegion"] = region
    return {**delivered, "dynamodb": dynamodb, "eventSourceARN": stream_arn}
