"""Faasm's `pyfaasm.core`: the functions Faasm's Python functions import, with Faasm's names
and semantics, on fwasm's host interface. State keys may be str or bytes (UTF-8); values
are bytes. Reads and writes use the executor's local copy of a value; push publishes it to
the global tier and pull refreshes it from there (Faasm's two tiers).

One difference from Faasm: `read_input` returns the input's bytes as they are, where Faasm's
ctypes buffer cut them at the first NUL byte.
"""

import os

import _fwasm
import _fwasm_runtime

_input = b""
_output = None


def _begin(data):
    """The call's input (called by the runtime before the script runs)."""
    global _input, _output
    _input = data
    _output = None


def _key(key):
    return key.decode("utf-8") if isinstance(key, (bytes, bytearray)) else str(key)


def _bytes(data):
    if isinstance(data, str):
        return data.encode("utf-8")
    return bytes(data)


# ---- Flags Faasm reads from the environment (any non-empty value is true) ----


def get_env_bool(name):
    return bool(os.environ.get(name))


def set_env_bool(name, value):
    if value:
        os.environ[name] = "on"
    else:
        os.environ.pop(name, None)


def is_local_chaining():
    return get_env_bool("PYTHON_LOCAL_CHAINING")


def is_local_output():
    return get_env_bool("PYTHON_LOCAL_OUTPUT")


def set_local_chaining(value):
    set_env_bool("PYTHON_LOCAL_CHAINING", value)


def set_local_input_output(value):
    set_env_bool("PYTHON_LOCAL_OUTPUT", value)


# ---- Input and output ----


def get_input_len():
    return len(_input)


def read_input(input_len):
    return _input[: max(0, int(input_len))]


def write_output(output):
    global _output
    if is_local_output():
        _output = _bytes(output)
    else:
        _fwasm.set_body(_bytes(output))


def get_output():
    if not is_local_output():
        raise RuntimeError("get_output() is only for local output (PYTHON_LOCAL_OUTPUT)")
    return _output


# ---- State ----


def read_state_size(key):
    return _fwasm.state_size(_key(key))


def read_state(key, state_len):
    """The value, as `state_len` bytes (zeros past its end)."""
    value = _fwasm.state_get(_key(key))
    return value[:state_len].ljust(state_len, b"\0")


def read_state_offset(key, total_len, offset, offset_len):
    """`offset_len` bytes at `offset` (zeros past the value's end)."""
    key = _key(key)
    size = _fwasm.state_size(key)
    available = max(0, min(offset_len, size - offset))
    chunk = _fwasm.state_get_offset(key, offset, available) if available else b""
    return chunk.ljust(offset_len, b"\0")


def write_state(key, value):
    _fwasm.state_set(_key(key), _bytes(value))


def write_state_offset(key, total_len, offset, value):
    """Writes at `offset`; a value shorter than `total_len` grows to it with zeros."""
    key = _key(key)
    if total_len > 0 and _fwasm.state_size(key) < total_len:
        _fwasm.state_set_offset(key, total_len - 1, b"\0")
    _fwasm.state_set_offset(key, offset, _bytes(value))


def push_state(key):
    _fwasm.state_push(_key(key))


def push_state_partial(key):
    """fwasm pushes whole values: a partial push is a push."""
    _fwasm.state_push(_key(key))


def pull_state(key, state_len):
    _fwasm.state_pull(_key(key))


# ---- Chaining ----


def chain(func, input_data):
    """Runs `func` (a function of this script, by its `__name__`) in a new call with
    `input_data` as its one argument: the call's id."""
    if is_local_chaining():
        func(_bytes(input_data))
        return 0
    return _fwasm_runtime.chain_entry(func.__name__, _bytes(input_data))


def await_call(call_id):
    """Waits for a chained call: 0 if it succeeded, else its return code."""
    if is_local_chaining():
        return 0
    return _fwasm.await_call(call_id, -1)


# ---- Faasm's older names (the pyfaasm.cfaasm extension) ----


def get_input():
    return _input


def set_output(output):
    write_output(output)


def get_state_size(key):
    return read_state_size(key)


def get_state(key, state_len):
    return read_state(key, state_len)


def get_state_offset(key, total_len, offset, offset_len):
    return read_state_offset(key, total_len, offset, offset_len)


def set_state(key, value):
    write_state(key, value)


def set_state_offset(key, total_len, offset, value):
    write_state_offset(key, total_len, offset, value)


def chain_this_with_input(func, input_data):
    return chain(func, input_data)


def check_python_bindings():
    """Faasm's self-check of its C bindings: fwasm's are built in."""
    return True
