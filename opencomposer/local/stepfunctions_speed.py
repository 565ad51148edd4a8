"""moto's Step Functions interpreter, made to keep up with a burst of executions.

Profiled (yappi, CPU clock) over a burst of 100 `POST /jobs`, the stack's process spent most of
its time in two things each execution and each task redoes, while the API waited for the GIL:

- parsing the definition: every execution lexes and parses the same ASL text with ANTLR and
  builds its evaluation components from the tree (moto's `Preprocessor`): about half a second
  of CPU each here. Both are cached per definition text. Sharing the components between
  executions is safe because they keep no state of an execution: that lives in the
  execution's `Environment` (its `heap`, keyed by component), except in Map and Parallel
  states' workers; a definition with either gets fresh components from the cached tree.
- a JSONPath parser per path evaluated (jsonpath_ng builds its yacc tables on each `parse`):
  parsed paths are cached (they are immutable; `find` does not change them).
- a boto3 client per task (`boto_client_for`): each loads the service's model files again.
  Clients are cached per (region, service); botocore clients are safe to share between
  threads, and these carry moto's fixed fake credentials whatever the task's role.

`install()` patches module state of moto's interpreter (pinned moto==5.2.5, see pyproject);
`uninstall()` puts it back.
"""

from __future__ import annotations

import functools
import json
import sys
import threading
from collections.abc import Callable
from typing import Any

from moto.stepfunctions.parser.asl.parse import asl_parser
from moto.stepfunctions.parser.asl.utils import boto_client, json_path

_PARSE_CACHE_SIZE = 8  # definitions: the stack has one
_PATH_CACHE_SIZE = 1024  # JSONPath expressions: the definition has a few dozen
_originals: dict[str, Callable[..., Any]] = {}


@functools.lru_cache(maxsize=_PARSE_CACHE_SIZE)
def _tree(definition: str) -> Any:
    """The ANTLR parse tree of a definition, or the syntax errors moto would raise."""
    from antlr4 import CommonTokenStream, InputStream
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLLexer import ASLLexer
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser

    listener = asl_parser.SyntaxErrorListener()
    parser = ASLParser(CommonTokenStream(ASLLexer(InputStream(definition))))
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    tree = parser.state_machine()
    if listener.errors:
        raise asl_parser.ASLParserException(errors=listener.errors)
    return tree


def _components(tree: Any) -> Any:
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    return Preprocessor().visit(tree)


@functools.lru_cache(maxsize=_PARSE_CACHE_SIZE)
def _shared_components(definition: str) -> Any:
    return _components(_tree(definition))


@functools.lru_cache(maxsize=_PARSE_CACHE_SIZE)
def _has_state_workers(definition: str) -> bool:
    """A Map or Parallel state anywhere (their workers keep state on the components)."""
    try:
        document = json.loads(definition)
    except ValueError:
        return True  # not JSON: let moto's own path judge it, uncached
    found = False

    def walk(value: Any) -> None:
        nonlocal found
        if isinstance(value, dict):
            found = found or value.get("Type") in ("Map", "Parallel")
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(document)
    return found


def _parse(definition: str) -> tuple[Any, Any]:
    """`AmazonStateLanguageParser.parse`, from the caches."""
    if _has_state_workers(definition):
        tree = _tree(definition)
        return _components(tree), tree
    return _shared_components(definition), _tree(definition)


_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def _client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    """`boto_client_for`, one client per (region, service, endpoint) for the whole process."""
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port

    key = (region, service, botocore_stubber.enabled, moto_server_port())
    with _clients_lock:  # creating clients in threads at once is not safe (boto3's default session)
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = _originals["boto_client_for"](region, service, state_credentials)
        return client


def _modules_using_client_factory() -> list[Any]:
    """moto's modules that imported `boto_client_for` by name (each holds its own reference)."""
    original = _originals.get("boto_client_for", boto_client.boto_client_for)
    return [
        module
        for name, module in list(sys.modules.items())
        if name.startswith(("moto.stepfunctions.", "opencomposer.local."))
        and getattr(module, "boto_client_for", None) in (original, _client_for)
    ]


def warm(region: str, services: tuple[str, ...] = ("dynamodb", "sagemaker")) -> None:
    """Make the tasks' clients now: the first executions would otherwise each load a service
    model (a few hundred ms of CPU) holding the interpreter lock, stalling every request the
    stack serves meanwhile, the first of a burst's among them. (The definition's parse is cached
    already: CreateStateMachine parses it.)"""
    for service in services:
        _client_for(region, service)


def install() -> None:
    if _originals:
        return
    # Components hold the task services of when they were built (stepfunctions_sagemaker's
    # `.sync` integration, installed before this, or moto's own): never ones of an earlier install.
    _shared_components.cache_clear()
    _originals["parse"] = asl_parser.AmazonStateLanguageParser.parse
    _originals["boto_client_for"] = boto_client.boto_client_for
    asl_parser.AmazonStateLanguageParser.parse = staticmethod(_parse)  # type: ignore[method-assign]
    _originals["json_path_parse"] = json_path.parse
    json_path.parse = functools.lru_cache(maxsize=_PATH_CACHE_SIZE)(json_path.parse)
    for module in _modules_using_client_factory():
        module.boto_client_for = _client_for


def uninstall() -> None:
    if not _originals:
        return
    for module in _modules_using_client_factory():
        module.boto_client_for = _originals["boto_client_for"]
    asl_parser.AmazonStateLanguageParser.parse = staticmethod(_originals["parse"])  # type: ignore[method-assign]
    json_path.parse = _originals["json_path_parse"]
    _originals.clear()
    _shared_components.cache_clear()
    with _clients_lock:
        _clients.clear()  # they point at this stack's moto port
