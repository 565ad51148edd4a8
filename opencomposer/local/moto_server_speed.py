"""moto's HTTP server, made cheaper per request: lookups it redoes on every request, cached.

Profiled (yappi, CPU clock) over a burst of 200 `POST /jobs`, the stack's process spent about a
sixth of its time finding which of moto's services a request is for and which actions its
handler class has, neither of which ever changes while the server runs:

- `DomainDispatcherApplication.get_backend_for_host` lists moto's package folder (`os.listdir`
  and an `isdir` per service, ~200) before it matches the host against the services' URL
  patterns: cached per host (a handful: one per service and region the stack uses);
- `BaseResponse.call_action` lists its class's methods with `inspect.getmembers` to check that
  the action exists: cached per class.

A third of it went on one thing more: the first burst of SageMaker requests (200 executions
creating and describing training jobs at once) loaded botocore's SageMaker model, a few MB of
JSON, 54 times over, because moto's `get_service_model` cache (`functools.cache`) lets every
thread that misses it load the model: now one thread loads it, and the others wait for it.

`install()` patches moto's module state (pinned moto==5.2.5, see pyproject); `uninstall()` puts
it back.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.core import responses
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_originals: dict[str, Callable[..., Any]] = {}


def install() -> None:
    if _originals:
        return
    _originals["method_names_from_class"] = responses.method_names_from_class
    _originals["get_backend_for_host"] = DomainDispatcherApplication.get_backend_for_host
    responses.method_names_from_class = functools.lru_cache(maxsize=None)(  # type: ignore[assignment]
        _originals["method_names_from_class"]
    )
    original_lookup = _originals["get_backend_for_host"]
    known: dict[str | None, Any] = {}
    lock = threading.Lock()

    def get_backend_for_host(app: Any, host: str | None) -> Any:
        if host in known:
            return known[host]
        backend = original_lookup(app, host)
        if backend is not None:  # an unknown host is not remembered: moto says so each time
            with lock:
                known[host] = backend
        return backend

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign,assignment]

    _originals["get_service_model"] = responses.get_service_model
    original_model = _originals["get_service_model"]
    loading = threading.Lock()

    def get_service_model(service_name: str) -> Any:
        with loading:  # moto's own cache answers every call after the first
            return original_model(service_name)

    responses.get_service_model = get_service_model  # type: ignore[assignment]


def uninstall() -> None:
    if not _originals:
        return
    responses.method_names_from_class = _originals.pop("method_names_from_class")
    responses.get_service_model = _originals.pop("get_service_model")  # type: ignore[assignment]
    DomainDispatcherApplication.get_backend_for_host = _originals.pop(  # type: ignore[method-assign]
        "get_backend_for_host"
    )
