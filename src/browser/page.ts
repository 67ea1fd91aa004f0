// The volunteer page's own script: starts the Web Worker that is the dask worker
// (volunteer-worker.ts), shows what it reports, and sends "leave" when the button is pressed.
// The page thread does nothing else, so it stays responsive whatever the tasks do.
// Must not: evaluate anything received from the worker or the network (text only, via textContent).
import type { PageCommand, VolunteerStatus, WorkerToPage } from "./protocol.ts";

const worker = new Worker(`/volunteer-worker.js${location.search}`, { type: "module" });
const $ = (id: string): HTMLElement => document.getElementById(id)!;

function show(s: VolunteerStatus): void {
  const state = $("state");
  state.textContent = s.state;
  state.dataset.state = s.state;
  $("name").textContent = s.name || "–";
  $("address").textContent = s.address || "–";
  $("scheduler").textContent = s.scheduler || "–";
  $("tasksDone").textContent = String(s.tasksDone);
  $("tasksFailed").textContent = String(s.tasksFailed);
  $("keysHeld").textContent = String(s.keysHeld);
  $("bytesHeld").textContent = String(s.bytesHeld);
  $("current").textContent = s.current || "idle";
  $("transfers").textContent = `${s.transfersIn} / ${s.transfersOut}`;
  $("error").textContent = s.error;
  ($("leave") as HTMLButtonElement).disabled = s.state !== "running";
  // For tests and embedding pages: the latest status as data, not only as text.
  (globalThis as { daskWasmStatus?: VolunteerStatus }).daskWasmStatus = s;
}

worker.addEventListener("message", (e: MessageEvent<WorkerToPage>) => {
  if (e.data?.t === "status") show(e.data.status);
});
worker.addEventListener("error", (e) => {
  $("error").textContent = `worker script failed: ${e.message}`;
});
$("leave").addEventListener("click", () => worker.postMessage({ t: "leave" } satisfies PageCommand));
