// Value conventions shared by every codec (pure: no IO).
//
// Dask keys are `str | int | float | tuple[Key, ...]` (2026; 2022 only ever sends strings).
// On the wire a tuple is a msgpack array, so in JS a tuple key is a (readonly) array.
// Arrays are compared by identity in a JS Map, so anything that indexes by key uses
// `keyId(key)`, a canonical string that is the key itself for strings and a tagged JSON
// form otherwise (never collides with a plain string key because it starts with "\u0000").
//
// Python distinguishes tuple and list; msgpack does not. Values that must reach Python as a
// tuple (or must be written to a pickle as a tuple) are marked with `tuple(...)`.

export type Key = string | number | readonly Key[];

const TUPLE = Symbol.for("dask-wasm.tuple");

/** An array marked as a Python tuple (the mark is a non-enumerable symbol property). */
export function tuple<T>(...items: T[]): T[] {
  Object.defineProperty(items, TUPLE, { value: true });
  return items;
}

export function isTuple(value: unknown): value is unknown[] {
  return Array.isArray(value) && (value as unknown as Record<symbol, unknown>)[TUPLE] === true;
}

export function isKey(value: unknown): value is Key {
  if (typeof value === "string" || typeof value === "number") return true;
  return Array.isArray(value) && value.every(isKey);
}

/** Canonical string for a key, usable in Maps and Sets; identity for string keys. */
export function keyId(key: Key): string {
  return typeof key === "string" ? key : "\u0000" + JSON.stringify(key);
}

/** Inverse of keyId. */
export function keyFromId(id: string): Key {
  return id.charCodeAt(0) === 0 ? (JSON.parse(id.slice(1)) as Key) : id;
}

/** Python's str() of a key, as 2022 clients stringify tuple keys: ('x', 0). */
export function stringifyKey(key: Key): string {
  if (typeof key === "string") return key;
  if (typeof key === "number") return String(key);
  const repr = (k: Key): string =>
    typeof k === "string" ? pyStrRepr(k) : typeof k === "number" ? String(k) : `(${k.map(repr).join(", ")}${k.length === 1 ? "," : ""})`;
  return repr(key);
}

/** Python repr() of a str (quotes chosen as Python does; common escapes). */
export function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    if (ch === quote || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else out += ch;
  }
  return out + quote;
}
