"""Client side of bench/macro/tab.bench.ts (Debian's python3 -I).

argv: SCHEDULER PYTHON_HELPER_DIR KIND N WORKER_ADDRESS WASM_PATH
KIND is "js" (N tasks dask_wasm.js("tasks.js#inc")) or "wasm" (N tasks dask_wasm.wasm("add") on
the module at WASM_PATH, scattered to the worker first). Every task is restricted to
WORKER_ADDRESS with resources={"wasm": 1}. A warm-up of 100 tasks of the same kind runs first
(the Wasm module is compiled there). Timed: submit to all done. All results are checked after the
timed part. Prints one JSON line: {"seconds", "n", "checked"}.
"""
import json
import sys
import time
import warnings

scheduler, helper_dir, kind, n, address, wasm_path = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
sys.path.insert(0, helper_dir)

import dask_wasm  # noqa: E402
from distributed import Client, wait  # noqa: E402
from distributed.versions import VersionMismatchWarning  # noqa: E402

# dask-wasm workers report no Python package versions; the client's table of them is noise here.
warnings.simplefilter("ignore", VersionMismatchWarning)
W = {dask_wasm.RESOURCE: 1}

with Client(scheduler, timeout=30) as client:
    if kind == "wasm":
        with open(wasm_path, "rb") as f:
            mod = client.scatter(f.read(), workers=[address])

        def submit(xs):
            return [client.submit(dask_wasm.wasm("add"), mod, float(x), 0.5, resources=W, workers=[address], pure=False) for x in xs]

        def expected(xs):
            return [float(x) + 0.5 for x in xs]
    else:

        def submit(xs):
            return client.map(dask_wasm.js("tasks.js#inc"), xs, resources=W, workers=[address], pure=False)

        def expected(xs):
            return [x + 1 for x in xs]

    warm = range(10**6, 10**6 + 100)
    assert client.gather(submit(warm)) == expected(warm)
    t0 = time.perf_counter()
    futs = submit(range(n))
    wait(futs)
    seconds = time.perf_counter() - t0
    # Checked outside the timed part, but always (a broken path cannot look fast).
    checked = client.gather(futs) == expected(range(n))
    print(json.dumps({"seconds": seconds, "n": n, "checked": checked}), flush=True)
