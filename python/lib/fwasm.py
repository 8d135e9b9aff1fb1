"""fwasm's Python API for functions.

A script that defines `handle(request)` is a function: `request` has the call's `method`,
`path`, `query`, `headers` (names in lower case) and `body` (bytes); the result is the
response: bytes or str (status 200), None (empty), a `Response`, or a tuple
`(body, status)` or `(body, status, headers)`.

    def handle(request):
        return b"Hello, " + request.body

The host interface beside it: `chain` / `await_call` / `call_output` for calling other
functions of the same user (wasm or Python), `state` for the user's state, `log`.
"""

import json as _json

import _fwasm

WAIT_FOREVER = -1


class Request:
    """The call's request."""

    def __init__(self, method, path, query, headers, body, call_id=0, user="", function=""):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.call_id = call_id
        self.user = user
        self.function = function

    @classmethod
    def _of_call(cls, body):
        call_id, user, function, method, path, query, headers, _ = _fwasm.request()
        folded = {}
        for name, value in headers:
            folded.setdefault(name.lower(), value)
        return cls(method, path, query, folded, body, call_id, user, function)

    def text(self):
        return self.body.decode("utf-8")

    def json(self):
        return _json.loads(self.body)

    def __repr__(self):
        return f"Request({self.method} {self.path}, {len(self.body)} bytes)"


class Response:
    """A response: a body (bytes, or str sent as UTF-8), a status and headers."""

    def __init__(self, body=b"", status=200, headers=None):
        self.body = body
        self.status = status
        self.headers = dict(headers or {})


def _respond(result):
    if isinstance(result, tuple):
        if not 2 <= len(result) <= 3:
            raise TypeError("handle() returned a tuple that is not (body, status[, headers])")
        result = Response(*result)
    elif not isinstance(result, Response):
        result = Response(result)
    body = result.body
    if body is None:
        body = b""
    elif isinstance(body, str):
        body = body.encode("utf-8")
    elif not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"handle() returned a {type(body).__name__} body: return bytes, str, None, "
            "a fwasm.Response or a (body, status[, headers]) tuple"
        )
    _fwasm.set_status(int(result.status))
    for name, value in result.headers.items():
        _fwasm.add_header(str(name), str(value))
    _fwasm.set_body(bytes(body))


def chain(function, input_data=b""):
    """Starts `function` (any function of this user) with `input_data`: the call's id."""
    return _fwasm.chain(function, _as_bytes(input_data))


def await_call(call_id, timeout_ms=WAIT_FOREVER):
    """Waits for a call to end: 0 if it succeeded, else its return code."""
    return _fwasm.await_call(call_id, timeout_ms)


def call_output(call_id):
    """An ended call's output (or its failure message)."""
    return _fwasm.call_output(call_id)


def log(text, level=3):
    """One line in the call's log (level 1 error, 2 warn, 3 info, 4 debug, 5 trace)."""
    _fwasm.log(level, str(text))


class state:
    """The user's state: reads and writes use this executor's local copy, `push` publishes
    it to the global tier and `pull` refreshes it from there."""

    @staticmethod
    def get(key):
        return _fwasm.state_get(key)

    @staticmethod
    def set(key, value):
        _fwasm.state_set(key, _as_bytes(value))

    @staticmethod
    def size(key):
        return _fwasm.state_size(key)

    @staticmethod
    def push(key):
        _fwasm.state_push(key)

    @staticmethod
    def pull(key):
        _fwasm.state_pull(key)

    @staticmethod
    def delete(key):
        _fwasm.state_delete(key)


def _as_bytes(data):
    if isinstance(data, str):
        return data.encode("utf-8")
    return bytes(data)
