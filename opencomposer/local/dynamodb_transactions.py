"""moto's DynamoDB, made safe for many requests at once: one request at a time, and transactions
that copy only what they touch.

Found profiling a burst of 200 `POST /jobs` (every one a TransactWriteItems: the job and its
Idempotency-Key item), moto 5.2.5's `transact_write_items`:

- deep-copies every table the transaction names before it starts, to roll back by putting the
  copy back: the cost grows with the table (the burst's last posts copied ~1,000 items each),
  and a rollback also undid every write other requests had made to the table meanwhile, so a
  cancelled transaction could lose another job's status update;
- reads the tables while moto's threaded server serves other requests, so the copy raced their
  writes and died with "dictionary changed size during iteration" (a 500 to the caller); a
  Scan or a Query serialising items that an UpdateItem changed at the same moment could too.

DynamoDB itself serialises conflicting writes and runs a transaction's conditions and writes as
one step. Here: every DynamoDB request of the server runs under one lock (each takes well under
a millisecond, and the GIL ran them one at a time anyway), and a transaction checks every
condition first, against the same state, and writes only if all hold, so there is nothing to
roll back; should a write still fail half-way (an update expression moto refuses only when it
applies it), the items written so far are put back as they were, from copies of those items
alone.

`install()` patches moto's classes (pinned moto==5.2.5, see pyproject); `uninstall()` restores them.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.responses import DynamoHandler

_OPERATIONS = ("ConditionCheck", "Put", "Delete", "Update")
_lock = threading.RLock()  # reentrant: a transaction calls the backend's own put/update/delete
_originals: dict[str, Callable[..., Any]] = {}


def install() -> None:
    if _originals:
        return
    _originals["call_action"] = DynamoHandler.call_action
    _originals["transact_write_items"] = DynamoDBBackend.transact_write_items
    original_call = DynamoHandler.call_action

    def call_action(handler: Any) -> Any:
        with _lock:
            return original_call(handler)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    if not _originals:
        return
    DynamoHandler.call_action = _originals.pop("call_action")  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = _originals.pop("transact_write_items")  # type: ignore[method-assign]


def transact_write_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """TransactWriteItems as DynamoDB runs it: every condition against the state before any
    write, then all the writes or none; the errors moto's own gives, in its shape."""
    with _lock:
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        operations = [_operation(backend, item) for item in transact_items]
        _check_unique(operations)
        errors = [_check(backend, op) for op in operations]
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        _apply(backend, operations)


class _Operation:
    def __init__(self, kind: str, op: dict[str, Any], key: dict[str, Any]) -> None:
        self.kind, self.op, self.key = kind, op, key
        self.table_name: str = op["TableName"]


def _operation(backend: DynamoDBBackend, item: dict[str, Any]) -> _Operation:
    if len(item) > 1:
        raise TransactWriteSingleOpException
    kind, op = next(iter(item.items()))
    if kind not in _OPERATIONS:
        raise MockValidationException(f"Unsupported transaction operation: {kind}")
    if kind == "Put":
        table = backend.get_table(op["TableName"])
        attrs = op["Item"]
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs[table.range_key_attr]
    else:
        key = op["Key"]
    return _Operation(kind, op, key)


def _check_unique(operations: list[_Operation]) -> None:
    """DynamoDB refuses a transaction that names one item twice."""
    seen = set()
    for op in operations:
        target = (op.table_name, str(dict(sorted(op.key.items()))))
        if target in seen:
            raise MultipleTransactionsException()
        seen.add(target)


def _check(backend: DynamoDBBackend, op: _Operation) -> tuple[str | None, str | None, dict[str, Any] | None]:
    """(None, None, None) when the operation's condition holds; else moto's error entry."""
    original_item = None
    try:
        current = backend.get_item(op.table_name, op.key)
        expression = op.op.get("ConditionExpression")
        if expression is not None:
            condition = get_filter_expression(
                expression, op.op.get("ExpressionAttributeNames"), op.op.get("ExpressionAttributeValues")
            )
            if not condition.expr(current):
                if op.op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    original_item = current.to_json()["Attributes"]
                raise ConditionalCheckFailed(item=original_item)
    except ConditionalCheckFailed as e:
        return "ConditionalCheckFailed", str(e.message), original_item
    except Exception as e:  # noqa: BLE001 - moto reports any other failure as that operation's error
        return type(e).__name__, str(e), original_item
    return None, None, None


def _apply(backend: DynamoDBBackend, operations: list[_Operation]) -> None:
    before = [(op, copy.deepcopy(backend.get_item(op.table_name, op.key))) for op in operations]
    done: list[tuple[_Operation, Any]] = []
    try:
        for op, old in before:
            _write(backend, op)
            done.append((op, old))
    except Exception:
        for op, old in reversed(done):
            _put_back(backend, op, old)
        raise


def _write(backend: DynamoDBBackend, op: _Operation) -> None:
    names, values = op.op.get("ExpressionAttributeNames"), op.op.get("ExpressionAttributeValues")
    expression = op.op.get("ConditionExpression")
    if op.kind == "Put":
        backend.put_item(
            op.table_name,
            op.op["Item"],
            condition_expression=expression,
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
    elif op.kind == "Delete":
        backend.delete_item(
            op.table_name,
            op.key,
            condition_expression=expression,
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
    elif op.kind == "Update":
        backend.update_item(
            op.table_name,
            op.key,
            update_expression=op.op["UpdateExpression"],
            condition_expression=expression,
            expression_attribute_names=names or {},
            expression_attribute_values=values or {},
        )


def _put_back(backend: DynamoDBBackend, op: _Operation, old: Any) -> None:
    """The item as it was before the transaction (None: it did not exist), without a stream record."""
    table = backend.get_table(op.table_name)
    hash_value = DynamoType(op.key[table.hash_key_attr])
    if table.range_key_attr is None:
        if old is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = old
        return
    range_value = DynamoType(op.key[table.range_key_attr])
    if old is None:
        table.items[hash_value].pop(range_value, None)
    else:
        table.items[hash_value][range_value] = old
