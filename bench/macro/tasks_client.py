"""Client side of bench/macro/tasks.bench.ts (Debian's python3 -I).

argv: SCHEDULER PYTHON_HELPER_DIR KIND N WORKER_ADDRESS WORKER_PID
KIND is "wasm" (dask_wasm.js("tasks.js#inc") with resources={"wasm": 1}) or "python" (a Python
inc). All tasks are restricted to WORKER_ADDRESS. The worker's CPU time (utime + stime from
/proc/PID/stat) is read right before submitting and after the worker has released every key
again, so it covers running, reporting and forgetting N tasks. A 200-task warm-up runs first.
Prints one JSON line: {"seconds", "cpu_seconds", "n", "checked"}.
"""
import json
import warnings
import os
import sys
import time

scheduler, helper_dir, kind, n, address, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
sys.path.insert(0, helper_dir)

import dask_wasm  # noqa: E402
from distributed import Client, wait  # noqa: E402
from distributed.versions import VersionMismatchWarning  # noqa: E402

# dask-wasm workers report no Python package versions; the client's table of them is noise here.
warnings.simplefilter("ignore", VersionMismatchWarning)

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds():
    with open("/proc/%d/stat" % pid) as f:
        # fields after the ")" that closes the command name; utime and stime are fields 14 and 15
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def inc(x):
    return x + 1


def submit(client, xs):
    if kind == "wasm":
        return client.map(dask_wasm.js("tasks.js#inc"), xs, resources={dask_wasm.RESOURCE: 1}, workers=[address])
    return client.map(inc, xs, workers=[address])


def held(client):
    return len(client.has_what().get(address, ()))


def settle(client):
    # Released keys leave the worker asynchronously; wait until it holds none (bench, not a test).
    deadline = time.time() + 60
    while held(client) and time.time() < deadline:
        time.sleep(0.02)


with Client(scheduler, timeout=30) as client:
    warm = submit(client, range(10**9, 10**9 + 200))
    assert client.gather(warm) == [x + 1 for x in range(10**9, 10**9 + 200)]
    del warm
    settle(client)
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    futs = submit(client, range(n))
    wait(futs)
    seconds = time.perf_counter() - t0
    # Check the answers outside the timed part, but always (a broken path cannot look fast).
    sample = client.gather(futs[:: max(1, n // 100)])
    checked = sample == [x + 1 for x in range(0, n, max(1, n // 100))]
    del futs
    settle(client)
    cpu1 = cpu_seconds()
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu1 - cpu0, "n": n, "checked": checked}), flush=True)
