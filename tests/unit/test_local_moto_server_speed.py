"""moto's server with its per-request lookups cached: every service still answers, and the
lookups run once per host, not once per request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import backends
from moto.server import ThreadedMotoServer

from opencomposer.local import moto_server_speed


@pytest.fixture()
def endpoint() -> Iterator[str]:
    moto_server_speed.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        moto_server_speed.uninstall()


def test_each_service_still_gets_its_requests_and_the_lookup_runs_once_per_host(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    listings: list[int] = []
    original = backends.list_of_moto_modules

    def list_of_moto_modules() -> Any:
        listings.append(1)
        return original()

    monkeypatch.setattr(backends, "list_of_moto_modules", list_of_moto_modules)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")

    s3.create_bucket(Bucket="speed")
    queue = sqs.create_queue(QueueName="speed")["QueueUrl"]
    for i in range(10):
        s3.put_object(Bucket="speed", Key=f"k{i}", Body=b"x")
        sqs.send_message(QueueUrl=queue, MessageBody=str(i))

    assert len(s3.list_objects_v2(Bucket="speed")["Contents"]) == 10
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "10"
    assert len(listings) <= 2  # one per service's host, at most; 24 requests were served


def test_a_service_model_is_loaded_once_however_many_requests_miss_it_at_once(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.loaders import Loader
    from moto.core import responses, utils

    # Given moto's model cache empty, and every load of a service model counted
    utils.get_service_model.cache_clear()
    loads: list[str] = []
    original = Loader.load_service_model

    def load_service_model(loader: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        loads.append(service_name)
        return original(loader, service_name, *args, **kwargs)

    monkeypatch.setattr(Loader, "load_service_model", load_service_model)

    # When 8 requests' threads want SageMaker's model at once
    threads = [threading.Thread(target=responses.get_service_model, args=("sagemaker",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then it was loaded once
    assert loads == ["sagemaker"]
