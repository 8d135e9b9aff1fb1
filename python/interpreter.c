/* fwasm's Python runtime: CPython embedded in an fwasm v1 module.
 *
 * Start-up is two steps, each followed by a snapshot the executor takes: FWASM_INIT starts
 * the interpreter and runs `_fwasm_runtime.init()`, which imports the commonly used standard
 * modules (once per executor); `fwasm_python_load`, run from that snapshot once per function,
 * runs `_fwasm_runtime.load()`, which compiles the function's script. Each call starts from
 * the function's snapshot and runs `_fwasm_runtime.run()`, which runs the script's entry.
 *
 * The executor gives this module, beside the preopened shared files, read-only files of its
 * own (see the executor's `python` module): the standard library at
 * /usr/local/lib/python311.zip, the script at /pyfuncs/<user>/<name>/function.py (Faasm's
 * place for it) and the function's name at /fwasm/python-function.
 *
 * `_fwasm` is the host interface as a built-in module: the request, the response, chaining,
 * state and logs, each a thin wrapper over sdk-c's fwasm.h; pyfaasm and fwasm.py build the
 * Python APIs on it. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <fwasm.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

/* The call in progress (set for the duration of fwasm_handle_request). */
static const fwasm_request *request;
static fwasm_response *response;

/* ---- Errors ------------------------------------------------------------------------------ */

/* Raises RuntimeError naming the operation and the host's reason for a negative status. */
static PyObject *host_error(const char *op, int64_t status) {
    char reason[512];
    int32_t len = fwasm_last_error(reason, sizeof reason);
    if (len > 0) {
        PyErr_Format(PyExc_RuntimeError, "%s: %s (%s)", op, reason, fwasm_status_name(status));
    } else {
        PyErr_Format(PyExc_RuntimeError, "%s failed (%s)", op, fwasm_status_name(status));
    }
    return NULL;
}

static int no_call(void) {
    if (request) return 0;
    PyErr_SetString(PyExc_RuntimeError, "no call is running (this is only available in a call)");
    return 1;
}

/* A malloc'd buffer of `len` bytes from the host, as bytes (freed). */
static PyObject *take_bytes(uint8_t *data, int64_t len) {
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)len);
    free(data);
    return bytes;
}

/* ---- The request and the response --------------------------------------------------------- */

static PyObject *fw_request(PyObject *self, PyObject *args) {
    (void)self, (void)args;
    if (no_call()) return NULL;
    PyObject *headers = PyList_New((Py_ssize_t)request->header_count);
    if (!headers) return NULL;
    for (size_t i = 0; i < request->header_count; i++) {
        PyObject *pair = Py_BuildValue("(ss)", request->headers[i].name,
                                       request->headers[i].value);
        if (!pair) {
            Py_DECREF(headers);
            return NULL;
        }
        PyList_SET_ITEM(headers, (Py_ssize_t)i, pair);
    }
    return Py_BuildValue("(KsssssNy#)", (unsigned long long)request->call_id, request->user,
                         request->function, request->method, request->path, request->query,
                         headers, (const char *)request->body, (Py_ssize_t)request->body_len);
}

static PyObject *fw_set_body(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer body;
    if (!PyArg_ParseTuple(args, "y*", &body)) return NULL;
    if (no_call()) {
        PyBuffer_Release(&body);
        return NULL;
    }
    int32_t status = fwasm_response_set_body(response, body.buf, (size_t)body.len);
    PyBuffer_Release(&body);
    if (status < 0) return host_error("setting the response body", status);
    Py_RETURN_NONE;
}

static PyObject *fw_set_status(PyObject *self, PyObject *args) {
    (void)self;
    int code;
    if (!PyArg_ParseTuple(args, "i", &code)) return NULL;
    if (no_call()) return NULL;
    if (code < 100 || code > 999) {
        return PyErr_Format(PyExc_ValueError, "%d is not an HTTP status (100 to 999)", code);
    }
    fwasm_response_set_status(response, (uint16_t)code);
    Py_RETURN_NONE;
}

static PyObject *fw_add_header(PyObject *self, PyObject *args) {
    (void)self;
    const char *name, *value;
    if (!PyArg_ParseTuple(args, "ss", &name, &value)) return NULL;
    if (no_call()) return NULL;
    int32_t status = fwasm_response_add_header(response, name, value);
    if (status < 0) return host_error("adding a response header", status);
    Py_RETURN_NONE;
}

/* Fails the call with `message` (its error) and return code `code`: does not return. */
static PyObject *fw_fail(PyObject *self, PyObject *args) {
    (void)self;
    const char *message;
    Py_ssize_t len;
    int code;
    if (!PyArg_ParseTuple(args, "s#i", &message, &len, &code)) return NULL;
    fflush(stdout);
    fflush(stderr);
    fwasm_v1_fail(message, (size_t)len);
    /* Return codes are positive: anything else fails the call with 1. */
    _Exit(code > 0 && code < 256 ? code : 1);
}

static PyObject *fw_log(PyObject *self, PyObject *args) {
    (void)self;
    int level;
    const char *text;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "is#", &level, &text, &len)) return NULL;
    int32_t status = fwasm_v1_log(level, text, (size_t)len);
    if (status < 0) return host_error("log", status);
    Py_RETURN_NONE;
}

/* ---- Chaining ------------------------------------------------------------------------------ */

static PyObject *fw_chain(PyObject *self, PyObject *args) {
    (void)self;
    const char *name;
    Py_buffer input;
    if (!PyArg_ParseTuple(args, "sy*", &name, &input)) return NULL;
    int64_t id = fwasm_chain(name, input.buf, (size_t)input.len);
    PyBuffer_Release(&input);
    if (id < 0) return host_error("chain", id);
    return PyLong_FromLongLong(id);
}

static PyObject *fw_await_call(PyObject *self, PyObject *args) {
    (void)self;
    long long id;
    int timeout_ms = FWASM_WAIT_FOREVER;
    if (!PyArg_ParseTuple(args, "L|i", &id, &timeout_ms)) return NULL;
    int32_t rc = fwasm_await(id, timeout_ms);
    if (rc < 0) return host_error("await_call", rc);
    return PyLong_FromLong(rc);
}

static PyObject *fw_call_output(PyObject *self, PyObject *args) {
    (void)self;
    long long id;
    if (!PyArg_ParseTuple(args, "L", &id)) return NULL;
    uint8_t *out = NULL;
    int64_t len = fwasm_call_output_alloc(id, &out);
    if (len < 0) return host_error("call_output", len);
    return take_bytes(out, len);
}

/* ---- State ---------------------------------------------------------------------------------- */

static PyObject *fw_state_get(PyObject *self, PyObject *args) {
    (void)self;
    const char *key;
    if (!PyArg_ParseTuple(args, "s", &key)) return NULL;
    uint8_t *value = NULL;
    int64_t len = fwasm_state_get_alloc(key, &value);
    if (len < 0) return host_error("reading state", len);
    return take_bytes(value, len);
}

static PyObject *fw_state_get_offset(PyObject *self, PyObject *args) {
    (void)self;
    const char *key;
    long long offset;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "sLn", &key, &offset, &len)) return NULL;
    if (offset < 0 || len < 0) return PyErr_Format(PyExc_ValueError, "negative offset or length");
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, len);
    if (!bytes) return NULL;
    int64_t got = fwasm_state_get_offset(key, offset, PyBytes_AS_STRING(bytes), (size_t)len);
    if (got < 0) {
        Py_DECREF(bytes);
        return host_error("reading state at an offset", got);
    }
    return bytes;
}

static PyObject *fw_state_size(PyObject *self, PyObject *args) {
    (void)self;
    const char *key;
    if (!PyArg_ParseTuple(args, "s", &key)) return NULL;
    int64_t size = fwasm_state_size(key);
    if (size < 0) return host_error("reading state's size", size);
    return PyLong_FromLongLong(size);
}

static PyObject *fw_state_set(PyObject *self, PyObject *args) {
    (void)self;
    const char *key;
    Py_buffer value;
    if (!PyArg_ParseTuple(args, "sy*", &key, &value)) return NULL;
    int32_t status = fwasm_state_set(key, value.buf, (size_t)value.len);
    PyBuffer_Release(&value);
    if (status < 0) return host_error("writing state", status);
    Py_RETURN_NONE;
}

static PyObject *fw_state_set_offset(PyObject *self, PyObject *args) {
    (void)self;
    const char *key;
    long long offset;
    Py_buffer value;
    if (!PyArg_ParseTuple(args, "sLy*", &key, &offset, &value)) return NULL;
    if (offset < 0) {
        PyBuffer_Release(&value);
        return PyErr_Format(PyExc_ValueError, "negative offset");
    }
    int32_t status = fwasm_state_set_offset(key, offset, value.buf, (size_t)value.len);
    PyBuffer_Release(&value);
    if (status < 0) return host_error("writing state at an offset", status);
    Py_RETURN_NONE;
}

/* push, pull, delete and clear_appended: one key in, nothing out. */
static PyObject *key_op(PyObject *args, int32_t (*op)(const char *), const char *what) {
    const char *key;
    if (!PyArg_ParseTuple(args, "s", &key)) return NULL;
    int32_t status = op(key);
    if (status < 0) return host_error(what, status);
    Py_RETURN_NONE;
}

static PyObject *fw_state_push(PyObject *self, PyObject *args) {
    (void)self;
    return key_op(args, fwasm_state_push, "pushing state");
}

static PyObject *fw_state_pull(PyObject *self, PyObject *args) {
    (void)self;
    return key_op(args, fwasm_state_pull, "pulling state");
}

static PyObject *fw_state_delete(PyObject *self, PyObject *args) {
    (void)self;
    return key_op(args, fwasm_state_delete, "deleting state");
}

static PyObject *fw_state_append(PyObject *self, PyObject *args) {
    (void)self;
    const char *key;
    Py_buffer value;
    if (!PyArg_ParseTuple(args, "sy*", &key, &value)) return NULL;
    int32_t status = fwasm_state_append(key, value.buf, (size_t)value.len);
    PyBuffer_Release(&value);
    if (status < 0) return host_error("appending state", status);
    Py_RETURN_NONE;
}

static PyObject *fw_state_lock(PyObject *self, PyObject *args) {
    (void)self;
    const char *key;
    int mode, unlock = 0;
    if (!PyArg_ParseTuple(args, "si|p", &key, &mode, &unlock)) return NULL;
    int32_t status = unlock ? fwasm_state_unlock(key, mode) : fwasm_state_lock(key, mode);
    if (status < 0) return host_error(unlock ? "unlocking state" : "locking state", status);
    Py_RETURN_NONE;
}

/* The call's environment as WASI gives it now, as a list of b"KEY=VALUE": libc's copy (and
 * so os.environ) is the one the interpreter started with, in the shared snapshot. */
static PyObject *fw_environ(PyObject *self, PyObject *args) {
    (void)self, (void)args;
    size_t count, size;
    if (__wasi_environ_sizes_get(&count, &size) != 0) {
        return PyErr_Format(PyExc_OSError, "environ_sizes_get failed");
    }
    uint8_t **entries = malloc((count + 1) * sizeof *entries);
    uint8_t *buf = malloc(size + 1);
    if (!entries || !buf) {
        free(entries);
        free(buf);
        return PyErr_NoMemory();
    }
    PyObject *list = NULL;
    if (__wasi_environ_get(entries, buf) != 0) {
        PyErr_Format(PyExc_OSError, "environ_get failed");
    } else if ((list = PyList_New((Py_ssize_t)count))) {
        for (size_t i = 0; i < count; i++) {
            PyObject *entry = PyBytes_FromString((const char *)entries[i]);
            if (!entry) {
                Py_CLEAR(list);
                break;
            }
            PyList_SET_ITEM(list, (Py_ssize_t)i, entry);
        }
    }
    free(entries);
    free(buf);
    return list;
}

static PyMethodDef fwasm_methods[] = {
    {"environ", fw_environ, METH_NOARGS, "The environment WASI gives now (b'KEY=VALUE')."},
    {"request", fw_request, METH_NOARGS,
     "The call: (id, user, function, method, path, query, headers, body)."},
    {"set_body", fw_set_body, METH_VARARGS, "Replaces the response body."},
    {"set_status", fw_set_status, METH_VARARGS, "Sets the response status."},
    {"add_header", fw_add_header, METH_VARARGS, "Adds a response header."},
    {"fail", fw_fail, METH_VARARGS, "Fails the call with a message and return code."},
    {"log", fw_log, METH_VARARGS, "Logs a line at a level (1 error .. 5 trace)."},
    {"chain", fw_chain, METH_VARARGS, "Starts a function of the same user: the call id."},
    {"await_call", fw_await_call, METH_VARARGS, "Waits for a call: its return code."},
    {"call_output", fw_call_output, METH_VARARGS, "An ended call's output."},
    {"state_get", fw_state_get, METH_VARARGS, "A state value (local copy)."},
    {"state_get_offset", fw_state_get_offset, METH_VARARGS, "Bytes of a value at an offset."},
    {"state_size", fw_state_size, METH_VARARGS, "A value's size."},
    {"state_set", fw_state_set, METH_VARARGS, "Replaces a value's local copy."},
    {"state_set_offset", fw_state_set_offset, METH_VARARGS, "Writes at an offset."},
    {"state_push", fw_state_push, METH_VARARGS, "Publishes a value to the global tier."},
    {"state_pull", fw_state_pull, METH_VARARGS, "Refreshes a value from the global tier."},
    {"state_delete", fw_state_delete, METH_VARARGS, "Deletes a value."},
    {"state_append", fw_state_append, METH_VARARGS, "Appends to a key's list."},
    {"state_lock", fw_state_lock, METH_VARARGS, "Locks (or, with unlock=True, unlocks) a key."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fwasm_module = {
    PyModuleDef_HEAD_INIT, "_fwasm", "fwasm's host interface.", -1, fwasm_methods,
    NULL, NULL, NULL, NULL,
};

static PyObject *init_fwasm_module(void) {
    return PyModule_Create(&fwasm_module);
}

/* ---- Start-up and calls -------------------------------------------------------------------- */

/* Fails with Python's error, if one is set, else with `what`. */
static void fail_with_python_error(const char *what) {
    if (PyErr_Occurred()) PyErr_Print();
    fwasm_failf("the Python runtime could not %s (its traceback is in the call's log)", what);
}

/* Calls `_fwasm_runtime.<name>()`. */
static void run_runtime(const char *name) {
    PyObject *runtime = PyImport_ImportModule("_fwasm_runtime");
    if (!runtime) fail_with_python_error("load _fwasm_runtime");
    PyObject *result = PyObject_CallMethod(runtime, name, NULL);
    Py_DECREF(runtime);
    if (!result) fail_with_python_error(name);
    Py_DECREF(result);
}

FWASM_INIT() {
    PyImport_AppendInittab("_fwasm", init_fwasm_module);
    PyConfig config;
    /* Isolated: no environment variables, no user site, no current directory on the path. */
    PyConfig_InitIsolatedConfig(&config);
    config.install_signal_handlers = 0;
    config.write_bytecode = 0;
    config.site_import = 0;
    config.user_site_directory = 0;
    config.buffered_stdio = 1;
    config.pathconfig_warnings = 0;
    /* A hash seed drawn once, at start-up: every call restored from this snapshot shares it
     * (CPython cannot change it later). */
    config.use_hash_seed = 0;
    PyStatus status = PyConfig_SetString(&config, &config.home, L"/usr/local");
    if (!PyStatus_Exception(status)) {
        status = PyConfig_SetString(&config, &config.program_name, L"python3");
    }
    if (!PyStatus_Exception(status)) {
        config.module_search_paths_set = 1;
        status = PyWideStringList_Append(&config.module_search_paths,
                                         L"/usr/local/lib/python311.zip");
    }
    if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        fwasm_failf("the Python interpreter did not start: %s",
                    status.err_msg ? status.err_msg : "unknown error");
    }
    run_runtime("init");
}

/* The second start-up step, once per function, from the snapshot FWASM_INIT left. */
__attribute__((export_name("fwasm_python_load"))) void fwasm_python_load(void) {
    run_runtime("load");
}

FWASM_HANDLER(req, res) {
    request = req;
    response = res;
    run_runtime("run");
    fflush(stdout);
    fflush(stderr);
    request = NULL;
    response = NULL;
}
