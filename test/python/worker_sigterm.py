"""worker-sigterm client: a job of many stamp tasks over two dask-wasm workers; the node test
SIGTERMs one of them once this script prints "PROGRESS <k>", and the job must still complete.

Config: {"scheduler", "victim", "survivor", "count", "ms", "kill_after"}. Records (never asserts):
- "done_at_kill_signal": results in when PROGRESS was printed
- "done_at_removal": results in when the scheduler no longer listed the victim
- "results": every stamp result, in submission order; "statuses": future statuses at the end
- "who_has": sorted set of workers holding the results at the end; "workers_after": scheduler's workers
"""

from distributed import Client, as_completed

import dask_wasm
from wasm_common import config, emit, progress, wait_until

cfg = config()
stamp = dask_wasm.js("tasks.js#stamp")
out = {}
with Client(cfg["scheduler"], timeout=30) as client:
    futs = client.map(stamp, [cfg["ms"]] * cfg["count"], resources={"wasm": 1}, pure=False)
    done = 0
    signalled = False
    removal_seen = None
    for _ in as_completed(futs):
        done += 1
        if done == cfg["kill_after"] and not signalled:
            signalled = True
            out["done_at_kill_signal"] = done
            progress("PROGRESS %d" % done)
        if signalled and removal_seen is None and cfg["victim"] not in client.scheduler_info()["workers"]:
            removal_seen = done
    # If the job outran the removal, still wait for it so the record says when it happened.
    if removal_seen is None:
        wait_until(lambda: cfg["victim"] not in client.scheduler_info()["workers"], "scheduler removed the victim")
        removal_seen = sum(f.status == "finished" for f in futs)
    out["done_at_removal"] = removal_seen
    out["results"] = client.gather(futs)
    out["statuses"] = sorted({f.status for f in futs})
    out["who_has"] = sorted({w for v in client.who_has(futs).values() for w in v})
    out["workers_after"] = sorted(client.scheduler_info()["workers"])

emit(out)
