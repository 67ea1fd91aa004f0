"""dask_wasm: name JavaScript and WebAssembly exports as dask tasks from a Python client.

A dask-wasm worker cannot run Python functions and a Python worker cannot run JavaScript, so a
Python client refers to a JS export by name::

    import dask_wasm
    fut = client.submit(dask_wasm.js("tasks.js#inc"), 1, resources={"wasm": 1})

The reference pickles to a *tagged plain value* (a ``str``), never to a ``dask_wasm`` class:
a scheduler or Python worker that does not have ``dask_wasm`` installed can still unpickle it
(dask 2026 unpickles every graph on the scheduler). The dask-wasm worker's data-only pickle
reader recognises the tag and runs the named export. Calling the reference in Python raises a
clear error: it only runs on dask-wasm workers, which advertise the ``wasm`` resource.

Pure Python, standard library only.
"""

__all__ = ["js", "wasm", "source", "JsFunction", "TAG", "RESOURCE", "parse"]

#: Prefix of the tagged string a reference pickles to.
TAG = "dask-wasm:"
#: Resource dask-wasm workers advertise (``resources={"wasm": nthreads}``).
RESOURCE = "wasm"


class JsFunction:
    """A reference to a JavaScript export (``"tasks.js#inc"``) or a Wasm export (``"wasm#add"``).

    Callable so that ``Client.submit`` accepts it; pickles to ``str(TAG + kind + ":" + ref)``.
    """

    __slots__ = ("kind", "ref", "__name__", "__qualname__")

    def __init__(self, kind, ref):
        if kind not in ("js", "wasm", "source"):
            raise ValueError("kind must be 'js', 'wasm' or 'source', not %r" % (kind,))
        if not isinstance(ref, str) or not ref:
            raise TypeError("a dask_wasm reference is a non-empty str, got %r" % (ref,))
        self.kind = kind
        self.ref = ref
        # dask names keys after the function: "inc-<token>" for "tasks.js#inc"
        # shipped source has no export name: its keys read "source-<token>"
        name = "source" if kind == "source" else ref.rsplit("#", 1)[-1] or ref
        self.__name__ = name
        self.__qualname__ = name

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            "%s is a dask-wasm task and runs only on dask-wasm workers; submit it with "
            "resources={%r: 1} so the scheduler routes it there" % (self, RESOURCE)
        )

    def __reduce__(self):
        # A plain str: unpickles anywhere without dask_wasm installed.
        return (str, (self.tagged(),))

    def tagged(self):
        return TAG + self.kind + ":" + self.ref

    def __dask_tokenize__(self):
        return self.tagged()

    def __eq__(self, other):
        return isinstance(other, JsFunction) and (self.kind, self.ref) == (other.kind, other.ref)

    def __hash__(self):
        return hash((self.kind, self.ref))

    def __repr__(self):
        return "dask_wasm.%s(%r)" % (self.kind, self.ref)


def js(ref):
    """Reference to a registered JavaScript export: ``"module.js#export"``."""
    return JsFunction("js", ref)


def wasm(export):
    """Reference to an export of a Wasm module passed as the task's first argument.

    The module is itself a dask key (scattered bytes or a computed result), so it travels like
    any dependency: ``client.submit(dask_wasm.wasm("add"), module_future, 2, 3, resources=...)``.
    """
    return JsFunction("wasm", export)


def source(text):
    """Shipped JavaScript source (``"(x) => x + 1"``): runs only on workers started with
    ``--allow-source``; every other worker (browser tabs always) refuses it with the coded
    error DASK_ERR_SOURCE_NOT_ALLOWED, which the client raises as the task's exception.
    """
    return JsFunction("source", text)


def parse(tagged):
    """Inverse of the pickled form: ``"dask-wasm:js:tasks.js#inc"`` -> ``("js", "tasks.js#inc")``, else None."""
    if not isinstance(tagged, str) or not tagged.startswith(TAG):
        return None
    kind, _, ref = tagged[len(TAG):].partition(":")
    return (kind, ref) if kind in ("js", "wasm", "source") and ref else None
