"""An app written against Dapr's official Python SDK, run against fwasm (not a Dapr sidecar).

Started by services/fwasm/tests/distributed/sdks.rs with DAPR_HTTP_ENDPOINT set to fwasm's
invoke port and FWASM_GRPC to its gRPC port; prints "dapr sdk: ok" when every check holds.
With DAPR_API_METHOD_INVOCATION_PROTOCOL=grpc the SDK invokes over gRPC instead of HTTP.
"""

import os

import grpc
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType


def refused_with(code, call):
    try:
        call()
    except DaprGrpcError as err:
        assert err.code() == code, (err.code(), err.details())
        return
    raise AssertionError(f"expected {code}, the call succeeded")


store = os.environ.get("STORE", "pyapp")
with DaprClient(os.environ["FWASM_GRPC"]) as d:
    # Save, read back with an etag, save again with it; the old etag is then stale.
    d.save_state(store, "k", "v1")
    first = d.get_state(store, "k")
    assert first.data == b"v1" and first.etag, (first.data, first.etag)
    d.save_state(store, "k", "v2", etag=first.etag)
    second = d.get_state(store, "k")
    assert second.data == b"v2" and second.etag != first.etag
    refused_with(grpc.StatusCode.ABORTED, lambda: d.save_state(store, "k", "v3", etag=first.etag))
    refused_with(grpc.StatusCode.INVALID_ARGUMENT, lambda: d.get_state("not/a/user", "k"))

    # Bulk reads: a missing key reads empty.
    d.save_state(store, "a", "1")
    items = d.get_bulk_state(store, keys=["a", "k", "missing"]).items
    assert [(i.key, i.data) for i in items] == [("a", b"1"), ("k", b"v2"), ("missing", b"")]

    # A transaction applies whole, or (one stale etag) not at all.
    upsert = TransactionOperationType.upsert
    delete = TransactionOperationType.delete
    d.execute_state_transaction(
        store,
        [
            TransactionalStateOperation(key="a", data="10", operation_type=upsert),
            TransactionalStateOperation(key="k", operation_type=delete),
        ],
    )
    assert d.get_state(store, "a").data == b"10"
    assert d.get_state(store, "k").data == b""
    stale = [
        TransactionalStateOperation(key="a", data="11", operation_type=upsert),
        TransactionalStateOperation(key="b", data="2", etag=second.etag, operation_type=upsert),
    ]
    refused_with(grpc.StatusCode.ABORTED, lambda: d.execute_state_transaction(store, stale))
    assert d.get_state(store, "a").data == b"10"
    assert d.get_state(store, "b").data == b""

    # Deletes check etags too.
    a = d.get_state(store, "a")
    refused_with(grpc.StatusCode.ABORTED, lambda: d.delete_state(store, "a", etag=second.etag))
    d.delete_state(store, "a", etag=a.etag)
    assert d.get_state(store, "a").data == b""

    # A function invoked as an app's method (over HTTP by default).
    reply = d.invoke_method("demo", "hello", data="python", http_verb="POST")
    assert reply.data == b"Hello, python!", reply.data

print("dapr sdk: ok")
