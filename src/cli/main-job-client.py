"""The main job's Python client (run by src/cli/main-job.ts with Debian's python3 -I).

argv: SCHEDULER PYTHON_HELPER_DIR N PY_WORKER_ADDRESS

A job that mixes worker kinds and moves data both ways through get_data:
  1. N JavaScript tasks  inc(i)          on the dask-wasm workers (resources={"wasm": 1})
  2. N Python tasks      square(y)       on the Python worker (fetches each y from a dask-wasm worker)
  3. 1 Python task       total(squares)  on the Python worker
  4. 1 JavaScript task   inc(total)      on a dask-wasm worker (fetches the total from Python)

Prints, one per line, flushed: "progress DONE TOTAL" as tasks finish, then one
"result {json}" line with the value, the expected value and per-worker task timings
taken from the scheduler's task stream.
"""
import json
import warnings
import sys
import time

scheduler, helper_dir, n, py_worker = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, helper_dir)

import dask_wasm  # noqa: E402  (python/dask_wasm from this repository)
from distributed import Client, as_completed, get_task_stream  # noqa: E402
from distributed.versions import VersionMismatchWarning  # noqa: E402

# dask-wasm workers report no Python package versions; the client's table of them is noise here.
warnings.simplefilter("ignore", VersionMismatchWarning)


def square(x):
    return x * x


def total(xs):
    return sum(xs)


def main():
    inc = dask_wasm.js("tasks.js#inc")
    with Client(scheduler, timeout=30) as client:
        with get_task_stream(client) as stream:
            start = time.time()
            ys = client.map(inc, range(n), resources={dask_wasm.RESOURCE: 1})
            zs = client.map(square, ys, workers=[py_worker])
            s = client.submit(total, zs, workers=[py_worker])
            final = client.submit(inc, s, resources={dask_wasm.RESOURCE: 1})
            futures = ys + zs + [s, final]
            print("progress 0 %d" % len(futures), flush=True)
            for done, fut in enumerate(as_completed(futures), 1):
                if fut.status == "error":
                    fut.result()  # raises the task's exception, with the worker's text
                print("progress %d %d" % (done, len(futures)), flush=True)
            value = final.result()
            elapsed = time.time() - start
        # Per worker: tasks it computed and the span from its first start to its last stop.
        workers = {}
        for rec in stream.data:
            w = workers.setdefault(rec["worker"], {"tasks": 0, "start": None, "stop": None, "compute_s": 0.0})
            for ss in rec.get("startstops", ()):
                if ss.get("action") != "compute":
                    continue
                w["tasks"] += 1
                w["compute_s"] += ss["stop"] - ss["start"]
                w["start"] = ss["start"] if w["start"] is None else min(w["start"], ss["start"])
                w["stop"] = ss["stop"] if w["stop"] is None else max(w["stop"], ss["stop"])
    expected = sum((i + 1) ** 2 for i in range(n)) + 1
    print("result " + json.dumps({
        "value": value, "expected": expected, "tasks": len(futures), "seconds": elapsed,
        "workers": workers,
    }), flush=True)
    return 0 if value == expected else 1


sys.exit(main())
