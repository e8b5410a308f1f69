"""moto (DynamoDB + Secrets Manager) on a loopback port, for the local stack and tests.

Usage: python infra/moto/serve.py [--port 0]
Prints `READY http://127.0.0.1:<port>` once listening; stops on SIGTERM/SIGINT.

Requests are executed one at a time. moto's backends evaluate a condition and apply the
write as separate Python steps, so two concurrent conditional writes to one item could
both succeed; DynamoDB itself serialises writes per item. Serialising here keeps the
exactly-once tests about our code, not about emulator races. Connections are still
accepted concurrently (threaded server, keep-alive works).
"""

import argparse
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server
import copy
import types

import moto.dynamodb.models as dynamodb_models


class Serialised:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            # Materialise the body inside the lock: WSGI apps may compute lazily.
            return list(self.app(environ, start_response))


def cheap_transactions() -> None:
    """moto deep-copies the whole table for every item of a transaction, to roll back if a
    condition fails: O(items in the table) per transaction item, which makes tests with
    thousands of items crawl, and a burst of refused claims queue behind the lock (see
    Serialised) for seconds. Requests here run one at a time, so every condition can be
    checked first against the state before the transaction, as DynamoDB evaluates them
    (one item per operation, so no operation sees another's write):
    - all hold: nothing will roll back, so moto runs without the table's copy;
    - any fails: nothing is written, and the cancellation is answered as moto answers it
      (a reason per operation, in order; "ConditionalCheckFailed" with the old item when
      ReturnValuesOnConditionCheckFailure is ALL_OLD, "None" for the others).
    Anything unusual (a repeated key, an unknown table, an expression we cannot evaluate)
    goes through moto's own path, copy and all."""
    original = dynamodb_models.DynamoDBBackend.transact_write_items

    def key_of(table, op_type, op):
        if op_type != "Put":
            return op["Key"]
        attrs = op["Item"]
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs[table.range_key_attr]
        return key

    def reasons(backend, transact_items):
        """Each operation's refusal against the current state, or None when its condition
        holds; raises on anything moto's own path should judge."""
        seen, found = set(), []
        for item in transact_items:
            (op_type, op), = item.items()
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError(op_type)
            table = backend.get_table(op["TableName"])
            key = key_of(table, op_type, op)
            unique = (op["TableName"], str(dict(sorted(key.items()))))
            if unique in seen:
                raise ValueError("repeated key")
            seen.add(unique)
            condition = op.get("ConditionExpression")
            if condition is None:
                found.append(None)
                continue
            current = backend.get_item(op["TableName"], key)
            check = dynamodb_models.get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            )
            if check.expr(current):
                found.append(None)
                continue
            old = None
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                old = current.to_json()["Attributes"]
            failed = dynamodb_models.ConditionalCheckFailed(item=old)
            found.append(("ConditionalCheckFailed", str(failed.message), old))
        return found

    def transact_write_items(self, transact_items, *args, **kwargs):
        if len(transact_items) > 100:
            return original(self, transact_items, *args, **kwargs)
        try:
            found = reasons(self, transact_items)
        except Exception:  # anything unusual: moto's own path decides
            return original(self, transact_items, *args, **kwargs)
        if any(found):
            raise dynamodb_models.TransactionCanceledException(
                [reason or (None, None, None) for reason in found]
            )
        # Only the table's copy is skipped: an update inside the transaction deep-copies the
        # item for the stream's old image, which must stay a copy.
        def deepcopy(obj, memo=None):
            return obj if isinstance(obj, dynamodb_models.Table) else copy.deepcopy(obj, memo)

        dynamodb_models.copy = types.SimpleNamespace(deepcopy=deepcopy, copy=copy.copy)
        try:
            return original(self, transact_items, *args, **kwargs)
        finally:
            dynamodb_models.copy = copy

    dynamodb_models.DynamoDBBackend.transact_write_items = transact_write_items


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    cheap_transactions()
    app = Serialised(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.server_address[1]

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"READY http://127.0.0.1:{port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
