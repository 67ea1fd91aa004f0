// Task failures as Python exceptions: the `exception` field of task-erred is a hand-built pickle
// (DASK-PROTOCOL-2022.12.md §10.2, verified against a real distributed.Client) of a `builtins`
// exception class with ONE str argument, so `future.result()` raises e.g.
// `TypeError("TypeError: x is not a function\n    at inc (file:///…/tasks.js:3:9) …")`.
//
// Pure: bytes out, no IO. Must not: emit anything but PROTO 2 / GLOBAL / BINUNICODE / TUPLE1 /
// REDUCE / STOP, or name a class outside `builtins` (the client unpickles it: a module it cannot
// import would turn the error into an UnpicklingError and the future would never resolve, §10.2).

/** A failed task as the executor reports it (TaskOutcome with status "error"). */
export interface ErrorOutcomeLike {
  typeName: string;
  message: string;
  stack: string;
  code?: string;
}

/**
 * JS error name -> Python builtins class. RangeError is Python's ValueError (an argument out of
 * range); a Wasm trap (WebAssembly.RuntimeError) stays RuntimeError; anything else, a plain
 * Error included, becomes the generic Exception (its JS name is in the text).
 */
const PY_CLASS: Record<string, string> = {
  TypeError: "TypeError",
  RangeError: "ValueError",
  RuntimeError: "RuntimeError",
  ReferenceError: "NameError",
  SyntaxError: "SyntaxError",
  EvalError: "RuntimeError",
  URIError: "ValueError",
  AggregateError: "Exception",
  DataCloneError: "TypeError",
};

/** The Python class name a JS error name maps to (always a builtins exception). */
export function pythonExceptionClass(jsName: string): string {
  return Object.hasOwn(PY_CLASS, jsName) ? PY_CLASS[jsName]! : "Exception";
}

/**
 * "<JSName>: <message>\n<stack frames>". V8's `stack` starts with its own "Name: message" line;
 * that header is dropped so the message appears once. A stack in another shape is kept whole.
 */
export function exceptionText(outcome: ErrorOutcomeLike): string {
  const head = `${outcome.typeName}: ${outcome.message}`;
  let stack = outcome.stack ?? "";
  if (stack.startsWith(head)) stack = stack.slice(head.length).replace(/^\n/, "");
  else if (stack.startsWith(outcome.typeName) && stack.includes("\n    at ")) stack = stack.slice(stack.indexOf("\n    at ") + 1);
  return stack ? `${head}\n${stack}` : head;
}

/** The `traceback_text` field: the JS stack frames (what Python would print above the error). */
export function tracebackText(outcome: ErrorOutcomeLike): string {
  const full = exceptionText(outcome);
  const nl = full.indexOf("\n");
  return nl < 0 ? "" : full.slice(nl + 1);
}

const enc = new TextEncoder();

/**
 * task-erred `exception`: protocol-2 pickle of builtins.<Class>(text) with the text of
 * `exceptionText` (JS message and stack). `pickle.loads` of it gives that exception.
 */
export function exceptionPickle(outcome: ErrorOutcomeLike): Uint8Array {
  const cls = pythonExceptionClass(outcome.typeName);
  // TextEncoder writes a lone surrogate as U+FFFD, so the bytes are always valid UTF-8 (Python's
  // BINUNICODE decoder is strict).
  const text = enc.encode(exceptionText(outcome));
  const global = enc.encode(`builtins\n${cls}\n`);
  const out = new Uint8Array(2 + 1 + global.length + 5 + text.length + 3);
  let p = 0;
  out[p++] = 0x80; // PROTO
  out[p++] = 2;
  out[p++] = 0x63; // GLOBAL 'c' module\nname\n
  out.set(global, p);
  p += global.length;
  out[p++] = 0x58; // BINUNICODE: u32 little-endian length, UTF-8
  new DataView(out.buffer).setUint32(p, text.length, true);
  p += 4;
  out.set(text, p);
  p += text.length;
  out[p++] = 0x85; // TUPLE1
  out[p++] = 0x52; // REDUCE
  out[p++] = 0x2e; // STOP
  return out;
}
