"""worker-memory client: results totalling about twice --memory-limit, held, gathered, then released.

Config: {"scheduler", "worker", "dashboard", "pid", "n", "count", "rss_factor", "release_timeout"}.
Records (never asserts; the node test does):
- "idle": /metrics and /proc VmRSS before anything is submitted
- "held": /metrics once all `count` typed(n) results are in memory or spilled
- "max_spilled": the largest keys_spilled / bytes_spilled seen while results were held or gathered
- "nbytes": {key: nbytes} the scheduler holds for our keys
- "arrays": per key: Python type, dtype, shape, nbytes, sha256 of the bytes, and the JS `sum`
  of the same key computed on the worker (which reads it back, from disk if it was spilled)
- "released": /metrics after the client released everything; "rss": VmRSS samples until it
  fell to rss_factor x idle or release_timeout passed, and whether it did.
"""

import hashlib
import time

import numpy as np
from distributed import Client, wait

import dask_wasm
from wasm_common import config, emit, metrics, proc_rss, wait_until

cfg = config()
W = {"wasm": 1}
typed = dask_wasm.js("tasks.js#typed")
jsum = dask_wasm.js("probe.js#fsum")  # test/helpers/wasm-worker.ts PROBE_SOURCE

M = "dask_wasm_"
out = {"idle": {"metrics": metrics(cfg["dashboard"]), "proc_rss": proc_rss(cfg["pid"])}}
spill_seen = {"keys": 0.0, "bytes": 0.0}


def observe():
    """One /metrics read, keeping the largest spill numbers seen."""
    m = metrics(cfg["dashboard"])
    spill_seen["keys"] = max(spill_seen["keys"], m.get(M + "keys_spilled", 0.0))
    spill_seen["bytes"] = max(spill_seen["bytes"], m.get(M + "bytes_spilled", 0.0))
    return m


with Client(cfg["scheduler"], timeout=30) as client:
    futs = client.map(typed, [cfg["n"]] * cfg["count"], resources=W, pure=False)
    for f in futs:
        # Observe spill while results arrive, not only at the end.
        wait([f])
        observe()
    out["held"] = observe()
    keys = [str(f.key) for f in futs]
    out["nbytes"] = client.run_on_scheduler(lambda dask_scheduler, keys=keys: {k: dask_scheduler.tasks[k].nbytes for k in keys})

    arrays = {}
    for f in futs:
        a = f.result()
        observe()
        arrays[str(f.key)] = {
            "type": type(a).__name__,
            "dtype": str(getattr(a, "dtype", None)),
            "shape": list(getattr(a, "shape", ())),
            "nbytes": int(getattr(a, "nbytes", -1)),
            "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() if isinstance(a, np.ndarray) else None,
            "sum": float(np.sum(a)) if isinstance(a, np.ndarray) else None,
            "first": a[:4].tolist() if isinstance(a, np.ndarray) else None,
        }
        del a
    sums = client.gather(client.map(jsum, futs, resources=W, pure=False))
    for k, s in zip(keys, sums):
        arrays[k]["js_sum"] = s
    out["arrays"] = arrays
    out["max_spilled"] = dict(spill_seen)
    # A small typed() for the content check: the node test compares its values with the big ones' prefix.
    out["small"] = client.submit(typed, 4, resources=W, pure=False).result().tolist()

    del futs, f  # `f` still names the last future after the loops
    wait_until(lambda: client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0, "scheduler released every task")
    wait_until(lambda: metrics(cfg["dashboard"]).get(M + "keys_stored") == 0, "worker holds no key")
    out["released"] = metrics(cfg["dashboard"])

    # RSS after release: sampled until it is back within rss_factor x idle, or the deadline.
    idle = out["idle"]["proc_rss"]
    samples = []
    deadline = time.monotonic() + cfg["release_timeout"]
    while True:
        rss = proc_rss(cfg["pid"])
        samples.append(rss)
        if rss <= cfg["rss_factor"] * idle or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    out["rss"] = {"idle": idle, "samples": samples[-20:], "final": samples[-1], "reached": samples[-1] <= cfg["rss_factor"] * idle}
    out["final_metrics"] = metrics(cfg["dashboard"])

emit(out)
