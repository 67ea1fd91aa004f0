"""browser-volunteer client (issue 5 Must-shows 1, 2, 4, 5): a Python client drives three browser
tabs (dask-wasm workers joined through the gateway) and one Python dask-worker, in phases that the
node test (test/browser/volunteer.test.ts) interleaves with its own actions on the tabs.

Config: {"scheduler", "tabs": [addr a, addr b, addr c], "py", "wasm_path", "n_wasm", "n_wave",
"sync_dir"}. The node test and this script meet through progress lines (printed here) and files
(written by the node test into sync_dir, waited for here with a deadline):

A. 300 dask_wasm.wasm("add") tasks (resources browser=1) on the module scattered to the three tabs;
   the futures are held. Prints "HOLD-A {has_what, ran}" and waits for file "a-done" (the node
   test compares each page's counts with these and takes the screenshot meanwhile).
B. Data across kinds: a Python task on the Python worker consumes a tab's result, and a tab's JS
   task consumes the Python worker's result.
C. Shipped source (dask_wasm.source) pinned to tab b: the exception text; then a registered export
   on tab b.
D. "D-READY", wait for "d-go"; then wave 1 (n_wave JS inc tasks, free to run) and wave 2 (n_wave
   JS add tasks that each depend on a Python `gate` task, which finishes only once the file "gate"
   exists): the job cannot finish before the node test lets it. Prints "D-SUBMITTED"; waits for
   file "closed" (the address of the tab the node test closed), polls scheduler_info until that
   worker is gone, prints "REMOVED", then gathers both waves.

Records (never asserts): scheduler_info workers, values with their inputs, who_has, exception text.
"""

import json
import os
import time

from distributed import Client, wait

import dask_wasm
from wasm_common import config, emit, progress, wait_until, who_has

cfg = config()
B = {"browser": 1}
PY = {"py": 1}
tabs = cfg["tabs"]
sync_dir = cfg["sync_dir"]
inc = dask_wasm.js("tasks.js#inc")
add = dask_wasm.js("tasks.js#add")
double = dask_wasm.js("tasks.js#double")


def py_double(x):
    """A Python task (runs on the Python worker only: resources={"py": 1})."""
    return x * 2


def py_triple(x):
    """A Python task whose result a tab's task consumes."""
    return x * 3


def gate(path, timeout):
    """A Python task that finishes (returning 0) only once `path` exists: polls with a deadline."""
    import os as _os
    import time as _time

    deadline = _time.monotonic() + timeout
    while not _os.path.exists(path):
        if _time.monotonic() > deadline:
            raise TimeoutError("gate file %s did not appear within %ss" % (path, timeout))
        _time.sleep(0.05)
    return 0


def wait_file(name):
    """Waits (with the shared deadline) for the node test to write sync_dir/name; returns its text."""
    path = os.path.join(sync_dir, name)
    wait_until(lambda: os.path.exists(path), "file %s from the node test" % name, timeout=120)
    with open(path) as f:
        return f.read()


def workers_view(client):
    info = client.scheduler_info()["workers"]
    return {a: {"name": w.get("name"), "nthreads": w.get("nthreads"), "resources": w.get("resources")} for a, w in info.items()}


out = {}
with Client(cfg["scheduler"], timeout=30) as client:
    out["workers"] = workers_view(client)

    # --- A: Wasm tasks on the tabs ------------------------------------------------------------
    with open(cfg["wasm_path"], "rb") as f:
        module = f.read()
    mod = client.scatter(module, workers=tabs, broadcast=True)
    adds = []
    for i in range(cfg["n_wasm"]):
        a, b = float(i), 0.5 * i + 0.25
        adds.append((a, b, client.submit(dask_wasm.wasm("add"), mod, a, b, resources=B, pure=False)))
    wait([f for _, _, f in adds])
    held = who_has(client, [f for _, _, f in adds])
    out["wasm"] = [[a, b, f.result(), held[str(f.key)]] for a, b, f in adds]
    out["module_key"] = str(mod.key)
    has_what = {str(w): sorted(str(k) for k in ks) for w, ks in client.has_what().items()}
    out["has_what_a"] = has_what
    # Tasks each tab ran: results held by it alone (the futures are held, nothing is replicated).
    ran = {t: sum(1 for ws in held.values() if ws == [t]) for t in tabs}
    out["ran_a"] = ran
    progress("HOLD-A " + json.dumps({"has_what": {t: len(has_what.get(t, [])) for t in tabs}, "ran": ran}))
    wait_file("a-done")

    # --- B: data across worker kinds ----------------------------------------------------------
    x = client.submit(inc, 41, resources=B, workers=[tabs[0]], pure=False)
    px = client.submit(py_double, x, resources=PY, pure=False)
    y = client.submit(py_triple, 20, resources=PY, pure=False)
    ty = client.submit(double, y, resources=B, workers=[tabs[1]], pure=False)
    wait([x, px, y, ty])
    out["cross"] = {
        "tab_to_py": {"input": 41, "x": x.result(), "result": px.result(), "x_ran": who_has(client, [x])[str(x.key)], "ran": who_has(client, [px])[str(px.key)]},
        "py_to_tab": {"input": 20, "y": y.result(), "result": ty.result(), "y_ran": who_has(client, [y])[str(y.key)], "ran": who_has(client, [ty])[str(ty.key)]},
    }

    # --- C: shipped source is refused; the tab keeps working ---------------------------------
    s = client.submit(dask_wasm.source("(x) => x + 1"), 1, resources=B, workers=[tabs[1]], pure=False)
    try:
        out["source"] = {"value": s.result(), "error": None}
    except Exception as e:
        out["source"] = {"value": None, "error": "%s: %s" % (type(e).__name__, e)}
    after = client.submit(inc, 99, resources=B, workers=[tabs[1]], pure=False)
    out["after_source"] = {"input": 99, "result": after.result(), "ran": who_has(client, [after])[str(after.key)]}

    # --- D: a tab is closed mid-job ------------------------------------------------------------
    progress("D-READY")
    wait_file("d-go")
    wave1 = [(i, client.submit(inc, i, resources=B, pure=False)) for i in range(cfg["n_wave"])]
    g = client.submit(gate, os.path.join(sync_dir, "gate"), 120, resources=PY, pure=False)
    wave2 = [(i, client.submit(add, i, g, resources=B, pure=False)) for i in range(cfg["n_wave"])]
    progress("D-SUBMITTED")
    closed = wait_file("closed").strip()
    t0 = time.monotonic()
    # Wave 2 waits for the gate, so the job is unfinished here by construction.
    out["wave2_done_at_close"] = sum(1 for _, f in wave2 if f.done())
    wait_until(lambda: closed not in client.scheduler_info()["workers"], "the scheduler removes %s" % closed, timeout=60)
    out["removed_after_s"] = time.monotonic() - t0
    out["workers_after_close"] = workers_view(client)
    progress("REMOVED")
    wait([f for _, f in wave1] + [f for _, f in wave2], timeout=180)
    held = who_has(client, [f for _, f in wave1] + [f for _, f in wave2])
    out["wave1"] = [[i, f.result(), held[str(f.key)]] for i, f in wave1]
    out["wave2"] = [[i, f.result(), held[str(f.key)]] for i, f in wave2]
    out["closed"] = closed

emit(out)
