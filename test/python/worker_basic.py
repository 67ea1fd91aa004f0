"""worker-basic client: JS tasks from a real Python client, mixed with Python tasks on a Python worker.

Config: {"scheduler", "wasm_a", "wasm_b", "py", "n"}. Records (never asserts):
- "inc1": submit(js("tasks.js#inc"), 1).result()
- "map": the results of client.map(js inc, range(n)), in order, and how many keys each worker holds
- "mixed": a graph JS -> Python -> JS -> JS whose edges cross workers, its results and who_has
- "values": values sent through `echo` on a dask-wasm worker and what came back (Python type + value)
- "numpy": Float64Array <-> numpy both ways (typed(n) result, numpy args echoed and summed)
"""

import numpy as np
from distributed import Client, wait

import dask_wasm
from wasm_common import config, describe, emit, who_has

cfg = config()
W = {"wasm": 1}
inc = dask_wasm.js("tasks.js#inc")
add = dask_wasm.js("tasks.js#add")
echo = dask_wasm.js("tasks.js#echo")
jsum = dask_wasm.js("probe.js#fsum")  # sums typed arrays too (test/helpers/wasm-worker.ts PROBE_SOURCE)
kind = dask_wasm.js("probe.js#kind")  # what a value is inside JS
typed = dask_wasm.js("tasks.js#typed")


def py_double(x):
    """A Python task: runs only on the Python worker (resources={"py": 1})."""
    return x * 2


def py_array(n):
    """A Python task returning a numpy float64 array (sent to JS through get_data)."""
    return np.arange(n, dtype="float64") * 0.25 + 1.0


def py_describe(x):
    """A Python task that reports what it received from a JS task (self-contained: it is pickled by value)."""
    return {"type": type(x).__name__, "dtype": str(getattr(x, "dtype", None)), "shape": list(getattr(x, "shape", ()))}


out = {}
with Client(cfg["scheduler"], timeout=30) as client:
    out["inc1"] = client.submit(inc, 1, resources=W).result()

    futs = client.map(inc, range(cfg["n"]), resources=W)
    out["map"] = client.gather(futs)
    held = who_has(client, futs)
    out["map_workers"] = {w: sum(1 for v in held.values() if w in v) for w in (cfg["wasm_a"], cfg["wasm_b"], cfg["py"])}
    del futs

    # JS (wasm_a) -> Python (py) -> JS (wasm_b) -> JS (wasm_a, needs a and c): every edge crosses
    # workers, so each dependency travels by get_data between a JS and a Python process.
    a = client.submit(inc, 10, resources=W, workers=[cfg["wasm_a"]])
    b = client.submit(py_double, a, resources={"py": 1}, workers=[cfg["py"]])
    c = client.submit(inc, b, resources=W, workers=[cfg["wasm_b"]])
    d = client.submit(add, a, c, resources=W, workers=[cfg["wasm_a"]])
    wait([a, b, c, d])
    out["mixed"] = {
        "values": dict(zip("abcd", client.gather([a, b, c, d]))),
        "who_has": {name: who_has(client, [f])[str(f.key)] for name, f in zip("abcd", [a, b, c, d])},
    }

    # Plain values through a JS identity function; `describe` records the Python type they come back as.
    samples = {
        "int": 7,
        "negint": -123456789,
        "float": 2.5,
        "str": "héllo, wasm ✓",
        "bytes": b"\x00\x01\xfe\xff",
        "float_integral": 3.0,
        "list": [1, "two", 3.5, [4, 5]],
        "tuple": (1, "x"),
        "set": {1, 2},
        "dict": {"a": 1, "b": [2, 3], "c": {"d": "e"}},
        "none": None,
        "bool": True,
    }
    sent = {name: client.submit(echo, v, resources=W, pure=False) for name, v in samples.items()}
    out["values"] = {name: {"sent": describe(samples[name]), "got": describe(f.result())} for name, f in sent.items()}
    # The example's own sum over a list argument.
    out["list_sum"] = {"sent": [1, 2, 3.5], "got": client.submit(dask_wasm.js("tasks.js#sum"), [1, 2, 3.5], resources=W).result()}

    # Float64Array -> numpy: a JS typed(n) result, gathered by the client and consumed by a Python task.
    n = 1000
    t = client.submit(typed, n, resources=W, workers=[cfg["wasm_a"]])
    arr = t.result()
    out["typed"] = {
        "n": n,
        "got": {"type": type(arr).__name__, "dtype": str(getattr(arr, "dtype", None)), "shape": list(getattr(arr, "shape", ()))},
        "client_sum": float(np.sum(arr)) if isinstance(arr, np.ndarray) else None,
        "js_sum": client.submit(jsum, t, resources=W, workers=[cfg["wasm_b"]]).result(),
        "js_kind": client.submit(kind, t, resources=W, workers=[cfg["wasm_b"]]).result(),
        "py_seen": client.submit(py_describe, t, resources={"py": 1}, workers=[cfg["py"]]).result(),
    }

    # numpy -> Float64Array: (1) an argument pickled into the task, (2) a Python worker's result fetched by get_data.
    x = np.arange(6, dtype="float64") * 1.5 - 2.0
    out["numpy_arg"] = {
        "sent": x.tolist(),
        "echo": describe(client.submit(echo, x, resources=W, pure=False).result()),
        "js_sum": client.submit(jsum, x, resources=W, pure=False).result(),
        "js_kind": client.submit(kind, x, resources=W, pure=False).result(),
        "py_sum": float(x.sum()),
    }
    # Other numpy dtypes: what JS sees (probe.js#kind) and what comes back from echo.
    out["dtypes"] = {}
    for dt in ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"):
        arr = (np.arange(5) * 3 - 4).astype(dt) if dt[0] != "u" else (np.arange(5) * 3).astype(dt)
        out["dtypes"][dt] = {
            "sent": describe(arr),
            "js_kind": client.submit(kind, arr, resources=W, pure=False).result(),
            "echo": describe(client.submit(echo, arr, resources=W, pure=False).result()),
        }
    p = client.submit(py_array, 9, resources={"py": 1}, workers=[cfg["py"]])
    ref = p.result()
    out["numpy_dep"] = {
        "sent": ref.tolist(),
        "echo": describe(client.submit(echo, p, resources=W, workers=[cfg["wasm_b"]], pure=False).result()),
        "js_sum": client.submit(jsum, p, resources=W, workers=[cfg["wasm_a"]], pure=False).result(),
        "js_kind": client.submit(kind, p, resources=W, workers=[cfg["wasm_a"]], pure=False).result(),
        "py_sum": float(ref.sum()),
        "who_has": who_has(client, [p])[str(p.key)],
    }

emit(out)
