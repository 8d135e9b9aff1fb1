"""fwasm's Python runtime: what the interpreter runs at start-up and for each call.

Start-up is two steps, each ending in a snapshot the executor keeps. `init()` runs once per
executor: it imports the standard modules most functions use. `load()` runs once per
function, from init's snapshot: it takes the function's environment, compiles its script and
imports the standard modules the script's own top-level import statements name; every call
of the function starts from its snapshot. Importing a standard module runs only the standard
library's code, the same for every call, so it is sound to do once; the script itself (its
top level included) runs in every call, since it may read the call's input, state or clock.

A script may define `fwasm_init()` (fwasm's `#[fwasm_sdk::init]` and `FWASM_INIT` for
Python): then its top level and `fwasm_init()` run at start-up too, and every call starts
from the module as they left it (its globals included) and runs only the entry. It may use
the console, clocks, random numbers and the local state tier; it cannot chain or reach
global state or shared files (they would wait for the network, and start-up may not).

`run()` runs each call: the script's top level in a fresh module (unless `fwasm_init()` ran
it at start-up), then its entry:

- a chained call's entry, the function the parent chained by name (Faasm's `pythonEntry`),
  with the call's input as its one argument;
- else `faasm_main()` (Faasm's entry), whose result is the call's return code (0 or None:
  success);
- else `handle(request)` (fwasm's own), whose result is the response.
"""

import ast
import random
import sys
import traceback
import types

import _fwasm

# Imported before the snapshot: what functions commonly use, so calls find them loaded.
PRELOADED = (
    "base64", "binascii", "bisect", "collections", "copy", "dataclasses", "datetime",
    "decimal", "enum", "fractions", "functools", "hashlib", "heapq", "io", "itertools",
    "json", "math", "operator", "pickle", "pprint", "random", "re", "statistics", "string",
    "struct", "textwrap", "time", "typing", "urllib.parse", "uuid",
    "fwasm", "pyfaasm", "pyfaasm.core",
)

# A chained call's input starts with this, the entry's name and a NUL (see `chain_entry`;
# fwasm_proto::python::ENTRY_PREFIX is the same).
ENTRY_PREFIX = b"\0fwasm-python-entry:"

_filename = None
_code = None
_problem = None
# The module `fwasm_init()` set up, when the script defines it.
_initialised = None


def init():
    for name in PRELOADED:
        __import__(name)


def load():
    global _filename, _code, _problem
    _take_environment()
    with open("/fwasm/python-function", encoding="utf-8") as f:
        function = f.read().strip()
    _filename = f"/pyfuncs/{function}/function.py"
    with open(_filename, "rb") as f:
        source = f.read()
    try:
        tree = ast.parse(source, _filename)
        _code = compile(tree, _filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as e:
        _problem = "does not compile:\n" + "".join(
            traceback.format_exception_only(type(e), e)
        ).rstrip()
        return
    for name in _standard_imports(tree):
        try:
            __import__(name)
        except BaseException:
            # The call's own import reports it (or does what it does), with the script's line.
            pass
    if any(isinstance(node, ast.FunctionDef) and node.name == "fwasm_init" for node in tree.body):
        global _initialised
        module = _fresh_module()
        try:
            exec(_code, module.__dict__)
            module.fwasm_init()
        except BaseException as e:
            _problem = "fwasm_init() failed:\n" + _traceback(e).rstrip()
            return
        _initialised = module


def _take_environment():
    """os.environ as the function's settings make it (init's snapshot has its own)."""
    import os

    fresh = dict(entry.split(b"=", 1) for entry in _fwasm.environ() if b"=" in entry)
    os.environ.clear()
    for key, value in fresh.items():
        os.environ[os.fsdecode(key)] = os.fsdecode(value)
    # Faasm's mark of its Python functions (its env_check looks for it).
    os.environ.setdefault("PYTHONWASM", "1")


def _standard_imports(tree):
    """The modules the script's top-level import statements name, that the standard
    library has (a script's own modules, or ones not built, are left to the call)."""
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    stdlib = sys.stdlib_module_names
    return [name for name in names if name.partition(".")[0] in stdlib]


def chain_entry(entry, input_data):
    """Starts a call of this same function that runs `entry` (a function of the script,
    by name) with `input_data`."""
    user_function = _fwasm.request()[2]
    data = ENTRY_PREFIX + entry.encode() + b"\0" + bytes(input_data)
    return _fwasm.chain(user_function, data)


def call_input():
    """The call's input and the entry a parent chained, if any (else None), as bytes."""
    body = _fwasm.request()[7]
    if body.startswith(ENTRY_PREFIX):
        entry, _, data = body[len(ENTRY_PREFIX):].partition(b"\0")
        return data, entry
    return body, None


def run():
    # Random numbers are the host's, per call: the module's generator was seeded when the
    # snapshot was taken, and every call would otherwise draw the same numbers.
    random.seed()
    if _problem is not None:
        _fail(f"{_filename}: {_problem}", 1)
    data, entry = call_input()
    import fwasm
    import pyfaasm.core

    pyfaasm.core._begin(data)
    module = _initialised
    try:
        if module is None:
            module = _fresh_module()
            exec(_code, module.__dict__)
        if entry is not None:
            code = _chained_entry(module, entry)(data)
        elif hasattr(module, "faasm_main"):
            code = _entry(module, "faasm_main", "faasm_main()")()
        elif hasattr(module, "handle"):
            handle = _entry(module, "handle", "handle(request)")
            fwasm._respond(handle(fwasm.Request._of_call(data)))
            code = 0
        else:
            _fail(f"{_filename} defines neither faasm_main() nor handle(request)", 1)
    except SystemExit as e:
        # As Python's own exit: a code that is not an int is printed, and is 1; an int is
        # taken modulo 256.
        code = e.code
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
            _fail(str(code), 1)
        code = int(code or 0) & 0xFF
    except BaseException as e:
        text = _traceback(e)
        # In the call's console output and, at error level, in its trace.
        sys.stderr.write(text)
        _fwasm.log(1, text.rstrip())
        _fail(text.rstrip(), 1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    if code is None or code == 0:
        return
    if not isinstance(code, int) or isinstance(code, bool):
        _fail(f"the entry returned {code!r}, not an int return code", 1)
    _fail(f"Call failed (return value={code})", code)


# Modules the interpreter is built without (no library for them in WASI's sysroot, or no
# such facility on WASI), named when a script's import of one fails.
NOT_BUILT = frozenset(
    ("zlib", "gzip", "bz2", "lzma", "ssl", "_ssl", "_hashlib", "sqlite3", "_sqlite3",
     "ctypes", "_ctypes", "mmap", "fcntl", "pwd", "grp", "termios", "tty", "pty", "readline",
     "resource", "_uuid", "curses", "_curses", "_posixsubprocess", "_posixshmem")
)


def _traceback(e):
    """The traceback of `e` from the script's frames on (the runtime's are left out)."""
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != _filename:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(e), e, tb))
    if isinstance(e, ModuleNotFoundError) and (e.name or "").partition(".")[0] in NOT_BUILT:
        text += (
            f"({e.name} is not in fwasm's Python: it is built without zlib, bz2, lzma, ssl, "
            "sqlite3 and ctypes, and without what WASI lacks: mmap, fcntl, pwd, grp, "
            "terminals, resource)\n"
        )
    return text


def _fresh_module():
    module = types.ModuleType("function")
    module.__file__ = _filename
    # Where pickle and friends look for the script's classes.
    sys.modules["function"] = module
    return module


def _chained_entry(module, name):
    """The function a chained call runs: one the script defines itself, by a public name
    (whoever sends the input picks it, as Faasm's `pythonEntry` lets them)."""
    try:
        name = name.decode("utf-8")
    except UnicodeDecodeError:
        _fail(f"the chained entry's name {name!r} is not UTF-8", 1)
    func = getattr(module, name, None) if not name.startswith("_") else None
    if not (isinstance(func, types.FunctionType) and func.__module__ == "function"):
        _fail(f"{_filename} defines no public function {name!r} to run as a chained entry", 1)
    return func


def _entry(module, name, what):
    func = getattr(module, name, None)
    if not callable(func):
        _fail(f"{_filename} has no function {name!r} for {what}", 1)
    return func


def _fail(message, code):
    sys.stdout.flush()
    sys.stderr.flush()
    _fwasm.fail(message, code if isinstance(code, int) and 0 < code < 256 else 1)
