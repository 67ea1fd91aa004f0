"""worker-errors client: a JS throw and a Wasm trap raise in the Python client; the same worker
then runs the next task.

Config: {"scheduler", "worker", "wasm_path", "message"}. Records (never asserts), for each of
"js_throw" and "wasm_trap": the exception's type name, str(), the formatted traceback text, and
the result of the next task on the same worker ("after").
"""

import traceback

from distributed import Client

import dask_wasm
from wasm_common import config, emit

cfg = config()
W = {"wasm": 1}
on = [cfg["worker"]]


def outcome(future):
    """What a Python user sees from .result(): the value, or the exception's type, text and traceback."""
    try:
        return {"raised": False, "value": future.result()}
    except Exception as e:  # noqa: BLE001 - recording whatever the client raises is the point
        return {
            "raised": True,
            "type": type(e).__name__,
            "mro": [c.__name__ for c in type(e).__mro__],
            "text": str(e),
            "traceback": "".join(traceback.format_exception(type(e), e, e.__traceback__)),
            "status": future.status,
        }


out = {}
with Client(cfg["scheduler"], timeout=30) as client:
    out["js_throw"] = outcome(client.submit(dask_wasm.js("tasks.js#fail"), cfg["message"], resources=W, workers=on, pure=False))
    # A cloudpickled Python function pinned to the dask-wasm worker: refused as a task error.
    out["python_fn"] = outcome(client.submit(lambda x: x + 1, 1, workers=on, pure=False))
    out["js_after"] = outcome(client.submit(dask_wasm.js("tasks.js#inc"), 41, resources=W, workers=on, pure=False))

    with open(cfg["wasm_path"], "rb") as f:
        mod = client.scatter(f.read(), workers=on)
    bump = lambda: outcome(client.submit(dask_wasm.wasm("bump"), mod, resources=W, workers=on, pure=False))  # noqa: E731
    out["wasm_before"] = outcome(client.submit(dask_wasm.wasm("add"), mod, 1.5, 2.0, resources=W, workers=on, pure=False))
    # bump() counts calls in one instance (a module global): 1, 2 ... then the trap, then 1 again
    # if the trapped instance was dropped and rebuilt (the worker runs one thread: one instance).
    out["bumps_before"] = [bump(), bump()]
    out["wasm_trap"] = outcome(client.submit(dask_wasm.wasm("trap"), mod, resources=W, workers=on, pure=False))
    out["bumps_after"] = [bump(), bump()]
    out["wasm_after"] = outcome(client.submit(dask_wasm.wasm("add"), mod, 20.0, 22.0, resources=W, workers=on, pure=False))
    # A second throw after the trap: the worker still turns errors into task-erred.
    out["js_throw2"] = outcome(client.submit(dask_wasm.js("tasks.js#fail"), cfg["message"] + "-again", resources=W, workers=on, pure=False))
    out["js_after2"] = outcome(client.submit(dask_wasm.js("tasks.js#inc"), 1, resources=W, workers=on, pure=False))

emit(out)
