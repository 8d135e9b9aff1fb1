"""An app written against Dapr's official Python SDK, run against fwasm (not a Dapr sidecar).

Started by services/fwasm/tests/distributed/sdks.rs with DAPR_HTTP_ENDPOINT set to fwasm's
invoke port and FWASM_GRPC to its gRPC port; prints "dapr sdk: ok" when every check holds.
With DAPR_API_METHOD_INVOCATION_PROTOCOL=grpc the SDK invokes over gRPC instead of HTTP.
The test has uploaded the testkit guest as STORE/counter (it takes the global write lock on
"counter" and counts) and STORE/subscriber (it keeps each event at "last-event"), subscribed to
the topic "orders".
"""

import json
import os
import re
import time
import urllib.request

import grpc
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
from dapr.clients.grpc._response import UnlockResponseStatus

HTTP = os.environ["DAPR_HTTP_ENDPOINT"]


def refused_with(code, call):
    try:
        call()
    except DaprGrpcError as err:
        assert err.code() == code, (err.code(), err.details())
        return
    raise AssertionError(f"expected {code}, the call succeeded")


def post(path, body):
    """A request of the app's own to fwasm's Faasm API, with the app's token when it has one."""
    request = urllib.request.Request(HTTP + path, data=body.encode(), method="POST")
    if os.environ.get("DAPR_API_TOKEN"):
        request.add_header("Authorization", "Bearer " + os.environ["DAPR_API_TOKEN"])
    with urllib.request.urlopen(request, timeout=30) as reply:
        return reply.read().decode()


def call_status(call_id):
    """fwasm's (Faasm's) status poll: RUNNING, SUCCESS: <output> or FAILED: <reason>."""
    return post("/", json.dumps({"status": True, "id": call_id}))


def parked_calls():
    with urllib.request.urlopen(HTTP + "/metrics", timeout=30) as reply:
        found = re.search(r"^fwasm_executor_parked_calls (\S+)$", reply.read().decode(), re.M)
    return float(found.group(1)) if found else 0.0


def eventually(what, check, seconds=30):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.05)


store = os.environ.get("STORE", "pyapp")
# The app whose `hello` function the app invokes: `fwasm up`'s demo, or (with a token, which
# reaches its own user alone) the store's own copy.
HELLO_APP = os.environ.get("HELLO_APP", "demo")
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

    # Locks: an app's lock is the user's global lock. The counter function waits for it,
    # parked (holding no worker), until the app unlocks; then it counts.
    assert d.try_lock(store, "counter", "app-1", 60).success
    assert not d.try_lock(store, "counter", "app-2", 60).success
    assert not d.try_lock(store, "counter", "app-1", 60).success, "not reentrant"
    call_id = int(post(f"/fa/{store}/counter", ""))
    eventually("the counter call parking on the lock", lambda: parked_calls() >= 1)
    assert call_status(call_id) == "RUNNING"
    status = d.unlock(store, "counter", "app-2").status
    assert status == UnlockResponseStatus.lock_belongs_to_others, status
    assert d.unlock(store, "counter", "app-1").status == UnlockResponseStatus.success
    eventually("the counter call ending", lambda: call_status(call_id) != "RUNNING")
    assert call_status(call_id) == "SUCCESS: 1", call_status(call_id)
    status = d.unlock(store, "counter", "app-1").status
    assert status == UnlockResponseStatus.lock_does_not_exist, status

    # Publishing reaches the subscribed function, the event in a CloudEvents envelope.
    d.publish_event(store, "orders", json.dumps({"order": 7}), data_content_type="application/json")
    eventually("the event reaching the subscriber", lambda: d.get_state(store, "last-event").data)
    event = json.loads(d.get_state(store, "last-event").data)
    assert event["data"] == {"order": 7} and event["topic"] == "orders", event
    assert event["pubsubname"] == store and event["specversion"] == "1.0", event

    # A function invoked as an app's method (over HTTP by default).
    reply = d.invoke_method(HELLO_APP, "hello", data="python", http_verb="POST")
    assert reply.data == b"Hello, python!", reply.data

print("dapr sdk: ok")
