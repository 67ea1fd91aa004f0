// Shared fixtures for the worker state-machine tests: the `ws` and `ws_with_running_task`
// fixtures of distributed's utils_test.py, and an instruction-list assertion with a readable diff.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ComputeTaskEvent, SecedeEvent } from "../../src/worker/events.ts";
import { Execute, GatherDep, instructionsMatch, InstructionMatch, RequestRefreshWhoHasMsg, type Instruction } from "../../src/worker/instructions.ts";
import { keyId, type Key } from "../../src/protocol/values.ts";
import { WorkerState, type WorkerStateOptions } from "../../src/worker/state.ts";

export const WS2 = "127.0.0.1:2";
export const WS3 = "127.0.0.1:3";

/** Python's `ws` fixture: an empty state at 127.0.0.1:1 with validation and a loop guard. */
export function makeWs(options: WorkerStateOptions = {}): WorkerState {
  return new WorkerState({ address: "127.0.0.1:1", validate: true, transitionCounterMax: 50_000, ...options });
}

/** A test with the `ws` fixture; teardown runs validateState(), as the fixture does. */
export function wsTest(name: string, fn: (ws: WorkerState) => void, options: WorkerStateOptions = {}): void {
  test(name, () => {
    const ws = makeWs(options);
    fn(ws);
    ws.validateState();
  });
}

export type RunningState = "executing" | "long-running";

/** Python's `ws_with_running_task`: task "x" with resources {R: 1} running, seceded or not;
 *  the test runs once per variant. */
export function runningTaskTest(name: string, fn: (ws: WorkerState, state: RunningState) => void, options: WorkerStateOptions = {}): void {
  for (const state of ["executing", "long-running"] as const) {
    test(`${name}[${state}]`, () => {
      const ws = makeWs({ resources: { R: 1 }, ...options });
      const instructions = ws.handleStimulus(ComputeTaskEvent.dummy("x", { resource_restrictions: { R: 1 }, stimulus_id: "compute" }));
      assertInstructions(instructions, [new Execute({ key: "x", stimulus_id: "compute" })]);
      if (state === "long-running") ws.handleStimulus(new SecedeEvent({ key: "x", compute_duration: 1.0, stimulus_id: "secede" }));
      assert.equal(ws.task("x")?.state, state);
      fn(ws, state);
      ws.validateState();
    });
  }
}

function show(i: Instruction | InstructionMatch): string {
  if (i instanceof InstructionMatch) return i.toString();
  const fields = JSON.stringify(i, (_k, v: unknown) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v));
  return `${i.constructor.name}(${fields})`;
}

const sortKeys = (keys: readonly Key[]): Key[] => [...keys].sort((a, b) => (keyId(a) < keyId(b) ? -1 : keyId(a) > keyId(b) ? 1 : 0));

/** Python compares GatherDep.to_gather as a set, and builds request-refresh-who-has keys from a
 *  set: the order among equal-priority keys is not part of the contract, so compare sorted. */
function normalise<T extends Instruction | InstructionMatch>(i: T): T {
  if (i instanceof GatherDep) return new GatherDep({ ...i, to_gather: sortKeys(i.to_gather) }) as unknown as T;
  if (i instanceof RequestRefreshWhoHasMsg) return new RequestRefreshWhoHasMsg({ ...i, keys: sortKeys(i.keys) }) as unknown as T;
  if (i instanceof InstructionMatch && Array.isArray(i.fields.to_gather)) {
    return new InstructionMatch(i.cls, { ...i.fields, to_gather: sortKeys(i.fields.to_gather as Key[]) }) as T;
  }
  return i;
}

/** deepEqual of the whole instruction list, with partial matchers allowed (Python `==`). */
export function assertInstructions(actualIn: readonly Instruction[], expectedIn: readonly (Instruction | InstructionMatch)[]): void {
  const actual = actualIn.map(normalise);
  const expected = expectedIn.map(normalise);
  if (!instructionsMatch(actual, expected)) {
    assert.fail(`instructions differ\n  actual:   [${actual.map(show).join(",\n              ")}]\n  expected: [${expected.map(show).join(",\n              ")}]`);
  }
}

/** Python `assert_story(story, expect, strict=False)`: `expect` is an ordered subsequence of the
 *  log, each expected record matching a prefix of the actual one (the stimulus_id is ignored). */
export function assertStory(story: readonly (readonly unknown[])[], expect: readonly (readonly unknown[])[], strict = false): void {
  let i = 0;
  for (const rec of story) {
    if (i < expect.length && prefixMatches(rec, expect[i]!)) i++;
    else if (strict && i < expect.length) break;
  }
  if (i !== expect.length || (strict && story.length !== expect.length)) {
    assert.fail(`story does not match at expected record ${i}\n  story:  ${JSON.stringify(story)}\n  expect: ${JSON.stringify(expect)}`);
  }
}

function prefixMatches(rec: readonly unknown[], exp: readonly unknown[]): boolean {
  if (exp.length > rec.length) return false;
  return exp.every((v, i) => {
    const r = rec[i];
    if (v instanceof Set) return Array.isArray(r) && r.length === v.size && r.every((x) => v.has(x));
    return JSON.stringify(r) === JSON.stringify(v);
  });
}
