"""Prints the scheduler's view of its workers: {"workers": {address: {name, nthreads, resources, memory_limit}}}.

Config: {"scheduler"}.
"""

from distributed import Client

from wasm_common import config, emit

cfg = config()
with Client(cfg["scheduler"], timeout=30) as client:
    info = client.scheduler_info()
emit({"workers": {a: {k: w.get(k) for k in ("name", "nthreads", "resources", "memory_limit")} for a, w in info["workers"].items()}})
