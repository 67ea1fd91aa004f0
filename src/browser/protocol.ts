// Messages between the volunteer page (page.ts) and its Web Worker (volunteer-worker.ts).
// Types only.

export interface VolunteerStatus {
  state: "connecting" | "running" | "leaving" | "closed" | "failed";
  name: string;
  /** The address the gateway registered for this tab (what the scheduler knows it by). */
  address: string;
  scheduler: string;
  tasksDone: number;
  tasksFailed: number;
  /** Keys this worker holds in memory: what the scheduler's has_what lists for it. */
  keysHeld: number;
  bytesHeld: number;
  /** Key of the task running now, "" when idle. */
  current: string;
  transfersIn: number;
  transfersOut: number;
  channels: number;
  error: string;
}

export type WorkerToPage = { t: "status"; status: VolunteerStatus };
export type PageCommand = { t: "leave" };
