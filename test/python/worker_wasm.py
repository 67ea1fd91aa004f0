"""worker-wasm client: a Wasm module built from the repository's AssemblyScript example is scattered
as bytes and its exports run as tasks on both dask-wasm workers.

Config: {"scheduler", "workers": [addr, ...], "wasm_path"}. Records (never asserts):
- "module_key" and where the scattered bytes live
- "add": [[a, b, worker, result], ...], "fib": [[n, worker, result], ...] (tasks pinned round-robin)
- "who_has_module": every worker that ended up holding the module (fetched it by get_data)
"""

from distributed import Client, wait

import dask_wasm
from wasm_common import config, emit, who_has

cfg = config()
W = {"wasm": 1}
workers = cfg["workers"]
with open(cfg["wasm_path"], "rb") as f:
    module = f.read()

out = {"module_bytes": len(module)}
with Client(cfg["scheduler"], timeout=30) as client:
    # Scattered to the first worker only: the others fetch it like any dependency.
    mod = client.scatter(module, workers=[workers[0]])
    out["module_key"] = str(mod.key)
    adds = []
    fibs = []
    for i in range(12):
        w = workers[i % len(workers)]
        a, b = float(i), 0.5 * i + 0.25
        adds.append((a, b, w, client.submit(dask_wasm.wasm("add"), mod, a, b, resources=W, workers=[w], pure=False)))
    for n in range(0, 20):
        w = workers[n % len(workers)]
        fibs.append((n, w, client.submit(dask_wasm.wasm("fib"), mod, n, resources=W, workers=[w], pure=False)))
    wait([f for *_, f in adds] + [f for *_, f in fibs])
    out["add"] = [[a, b, w, f.result()] for a, b, w, f in adds]
    out["fib"] = [[n, w, f.result()] for n, w, f in fibs]
    out["who_has_module"] = who_has(client, [mod])[str(mod.key)]

emit(out)
