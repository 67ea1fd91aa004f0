"""worker-threads client: two `stamp` tasks on a worker with --nthreads 2 and two on a worker with
--nthreads 1; records the [start, stop] stamps each task returned (the node test compares them).

Config: {"scheduler", "parallel", "serial", "ms"}.
"""

from distributed import Client, wait

import dask_wasm
from wasm_common import config, emit

cfg = config()
stamp = dask_wasm.js("tasks.js#stamp")

out = {}
with Client(cfg["scheduler"], timeout=30) as client:
    for name in ("parallel", "serial"):
        # One map call: both tasks reach the scheduler in the same update-graph.
        futs = client.map(stamp, [cfg["ms"]] * 2, resources={"wasm": 1}, workers=[cfg[name]], pure=False)
        wait(futs)
        out[name] = client.gather(futs)

emit(out)
