"""Facts about python/dask_wasm for test/interop/worker-python-helper.test.ts (no cluster needed).

Prints one RESULT line: the pickles of js()/wasm() references under every pickler a dask client
uses (pickle protocols 2-5, cloudpickle, distributed.protocol.pickle), their dask tokens, the
names dask derives keys from, and what calling a reference or building a bad one raises.
"""

import pickle

import cloudpickle
import dask.base
import dask.utils
import distributed.protocol.pickle as dpickle

import dask_wasm
from wasm_common import emit

REFS = {"js_inc": dask_wasm.js("tasks.js#inc"), "js_dec": dask_wasm.js("tasks.js#dec"), "wasm_add": dask_wasm.wasm("add"), "wasm_inc": dask_wasm.wasm("tasks.js#inc")}


def raised(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - recording the exception is the point
        return {"type": type(e).__name__, "text": str(e)}
    return None


out = {"refs": {}}
for name, ref in REFS.items():
    pickles = {"protocol%d" % p: pickle.dumps(ref, protocol=p).hex() for p in (2, 3, 4, 5)}
    pickles["cloudpickle"] = cloudpickle.dumps(ref).hex()
    pickles["distributed"] = dpickle.dumps(ref).hex()
    out["refs"][name] = {
        "kind": ref.kind,
        "ref": ref.ref,
        "tagged": ref.tagged(),
        "repr": repr(ref),
        "pickles": pickles,
        "token": dask.base.tokenize(ref),
        "token_again": dask.base.tokenize(dask_wasm.JsFunction(ref.kind, ref.ref)),
        "token_with_args": dask.base.tokenize(ref, 1, {"a": 2}),
        "funcname": dask.utils.funcname(ref),
        "parse": list(dask_wasm.parse(ref.tagged())),
        "call": raised(lambda: ref(1)),
        "equal_to_copy": ref == dask_wasm.JsFunction(ref.kind, ref.ref),
    }
out["parse_other"] = [dask_wasm.parse(x) for x in ("tasks.js#inc", "dask-wasm:py:x", "dask-wasm:js:", 5)]
out["bad_kind"] = raised(lambda: dask_wasm.JsFunction("py", "x"))
out["bad_ref"] = raised(lambda: dask_wasm.js(""))
out["resource"] = dask_wasm.RESOURCE
emit(out)
