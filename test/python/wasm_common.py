"""Shared plumbing for the live client scripts in test/python (run by test/interop/worker-*.test.ts).

Each script takes one JSON argument (scheduler address, worker addresses, dashboard URLs, ...),
drives a real ``distributed.Client`` against the real scheduler, and prints exactly one line
``RESULT {json}`` with what it observed. The node test makes the assertions, so a script only
records facts (values, types, who_has, metrics) and never decides pass/fail itself, except for
waits on a condition, which fail loudly (exit 1) when their deadline passes.

Must not: sleep a fixed time to "let things settle" (waits poll a condition with a deadline),
or talk to anything but the addresses it was given.
"""

import json
import sys
import time
import urllib.request

#: How long a polled condition may take before the script fails.
WAIT_TIMEOUT_S = 60.0
#: Poll interval of `wait_until` (a condition wait, not a settle-sleep).
POLL_S = 0.05


def config():
    """The JSON argument the node test passed."""
    return json.loads(sys.argv[1])


def emit(result):
    """Prints the one RESULT line the node helper parses."""
    print("RESULT " + json.dumps(result, default=repr), flush=True)


def progress(line):
    """A line the node test can wait for while the script keeps running."""
    print(line, flush=True)


def wait_until(predicate, what, timeout=WAIT_TIMEOUT_S):
    """Polls `predicate()` until it returns a truthy value (returned), or raises after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached within %ss: %s (last value %r)" % (timeout, what, value))
        time.sleep(POLL_S)


def metrics(dashboard):
    """GET <dashboard>/metrics -> {name: float} (Prometheus text, comments skipped)."""
    with urllib.request.urlopen(dashboard.rstrip("/") + "/metrics", timeout=10) as res:
        text = res.read().decode("utf-8")
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, value = line.split()[:2]
        out[name] = float(value)
    return out


def proc_rss(pid):
    """VmRSS of a process, bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for pid %d" % pid)


def describe(value):
    """A JSON-able record of a value that came back from a worker: its Python type and contents."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return {"type": "ndarray", "dtype": str(value.dtype), "shape": list(value.shape), "values": value.tolist()}
    if isinstance(value, bytes):
        return {"type": "bytes", "hex": value.hex()}
    if isinstance(value, (list, tuple)):
        return {"type": type(value).__name__, "items": [describe(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"type": type(value).__name__, "items": [describe(v) for v in sorted(value, key=repr)]}
    if isinstance(value, dict):
        return {"type": "dict", "items": {str(k): describe(v) for k, v in value.items()}}
    return {"type": type(value).__name__, "value": value}


def who_has(client, futures):
    """{key: sorted worker addresses holding it} for futures (keys stringified)."""
    return {str(k): sorted(v) for k, v in client.who_has(futures).items()}
