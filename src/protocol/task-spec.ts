// The typed tree for dask._task_spec objects (dask 2024.12+ / distributed 2026.7), as the pickle
// reader produces it from a run_spec and as the pickle writer consumes it for a client's graph.
//
// Pure data: plain classes with a `kind` tag, no IO, no evaluation. Evaluating a task (resolving
// TaskRefs against the worker's data, calling the function) is the worker's job, not this module's.
// Classes rather than object literals so that a user dict which happens to have a "kind" field can
// never be mistaken for a graph node (`instanceof` decides, the tag only helps `switch`).
//
// Semantics follow dask/_task_spec.py (MODERN-DELTA.md §6):
//   Task(key, func, *args, **kwargs)   key is null for an inline sub-task
//   TaskRef(key)                       the value of `key` (a dependency)
//   Alias(key, target)                 the value of `target` (a dependency on `target`)
//   DataNode(key, value)               a literal; no dependencies
//   List/Tuple/Set/Dict(...)           a container whose GraphNode elements are evaluated
// A plain JS array/Map holding a TaskRefNode is NOT a container: as in Python, its refs are not
// dependencies and are not resolved.
import type { Key } from "./values.ts";
import { keyId } from "./values.ts";

/** A Python global `module.name` kept by name (never imported, never executed). */
export class GlobalRef {
  readonly kind = "global" as const;
  readonly module: string;
  readonly name: string;
  /** `module.name`, the form error messages and function registries use. */
  readonly dotted: string;
  constructor(module: string, name: string) {
    this.module = module;
    this.name = name;
    this.dotted = `${module}.${name}`;
  }
}

/** dask._task_spec.Task. `func` is a GlobalRef or whatever value the client put there (often a str). */
export class TaskNode {
  readonly kind = "task" as const;
  readonly key: Key | null;
  readonly func: unknown;
  readonly args: unknown[];
  readonly kwargs: Map<string, unknown>;
  constructor(key: Key | null, func: unknown, args: unknown[] = [], kwargs: Map<string, unknown> = new Map()) {
    this.key = key;
    this.func = func;
    this.args = args;
    this.kwargs = kwargs;
  }
}

/** dask._task_spec.TaskRef: stands for the value of `key`. */
export class TaskRefNode {
  readonly kind = "ref" as const;
  readonly key: Key;
  constructor(key: Key) {
    this.key = key;
  }
}

/** dask._task_spec.Alias: named `key`, stands for the value of `target` (often key === target). */
export class AliasNode {
  readonly kind = "alias" as const;
  readonly key: Key;
  readonly target: Key;
  constructor(key: Key, target: Key = key) {
    this.key = key;
    this.target = target;
  }
}

/** dask._task_spec.DataNode: a literal value stored under `key`. */
export class DataNodeNode {
  readonly kind = "data" as const;
  readonly key: Key | null;
  readonly value: unknown;
  constructor(key: Key | null, value: unknown) {
    this.key = key;
    this.value = value;
  }
}

export type ContainerKind = "list" | "tuple" | "set" | "dict";

/**
 * dask._task_spec.List/Tuple/Set/Dict. `items` are the elements in order; for "dict" they are the
 * flattened pairs `[k0, v0, k1, v1, ...]`, exactly as the pickled slot state carries them.
 */
export class ContainerNode {
  readonly kind: ContainerKind;
  readonly items: unknown[];
  constructor(kind: ContainerKind, items: unknown[]) {
    this.kind = kind;
    this.items = items;
  }
}

export type GraphNode = TaskNode | TaskRefNode | AliasNode | DataNodeNode | ContainerNode;

export function isGraphNode(value: unknown): value is GraphNode {
  return (
    value instanceof TaskNode ||
    value instanceof TaskRefNode ||
    value instanceof AliasNode ||
    value instanceof DataNodeNode ||
    value instanceof ContainerNode
  );
}

/**
 * The keys a node depends on, first-seen order, no duplicates: what Python's
 * `GraphNode.dependencies` computes (Task.__init__ collects them from GraphNode args/kwargs only,
 * descending into inline Tasks and containers; plain lists/dicts are not searched).
 * For a run_spec read from the scheduler this equals the pickled `_dependencies` frozenset.
 */
export function dependencies(node: unknown): Key[] {
  const out: Key[] = [];
  const seen = new Set<string>();
  const add = (k: Key): void => {
    const id = keyId(k);
    if (!seen.has(id)) {
      seen.add(id);
      out.push(k);
    }
  };
  // Explicit stack instead of recursion: a hostile run_spec may nest sub-tasks deeply.
  const stack: unknown[] = [node];
  while (stack.length > 0) {
    const n = stack.pop();
    if (n instanceof TaskRefNode) add(n.key);
    else if (n instanceof AliasNode) add(n.target);
    else if (n instanceof TaskNode) {
      const raw: unknown = n.kwargs; // a Map; a plain object from untyped callers is tolerated
      const kw = raw instanceof Map ? [...raw.values()] : Object.values((raw ?? {}) as object);
      // Push in reverse so that pops visit args left to right, then kwargs.
      for (let i = kw.length - 1; i >= 0; i--) stack.push(kw[i]);
      for (let i = n.args.length - 1; i >= 0; i--) stack.push(n.args[i]);
    } else if (n instanceof ContainerNode) {
      for (let i = n.items.length - 1; i >= 0; i--) stack.push(n.items[i]);
    }
  }
  return out;
}
