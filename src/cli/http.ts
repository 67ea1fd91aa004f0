// The worker's small HTTP server on --dashboard-address: GET /health -> 200 "ok", GET /metrics
// -> Prometheus text, anything else 404 (405 for a non-GET on a known path). It reads metrics
// through a callback at scrape time and owns nothing else: it must not touch the worker, the
// scheduler connection or process signals (main.ts wires those). Node only (node:http).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus, type MetricsSnapshot } from "./metrics.ts";

export interface HttpOptions {
  host: string;
  port: number;
  /** Called on every /metrics request; a throw becomes a 500 with the error's text. */
  metrics: () => Partial<MetricsSnapshot>;
}

export interface HttpServerHandle {
  /** "http://host:port" with the port actually bound. */
  readonly url: string;
  readonly port: number;
  /** Stops listening and drops every open connection; resolves once the server is closed. */
  close(): Promise<void>;
}

function reply(res: ServerResponse, status: number, body: string, type = "text/plain; charset=utf-8", head = false): void {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
  res.end(head ? undefined : body);
}

function handle(opts: HttpOptions, req: IncomingMessage, res: ServerResponse): void {
  // Only the path matters; Prometheus scrapers may add query strings.
  const path = (req.url ?? "/").split("?")[0];
  const known = path === "/health" || path === "/metrics";
  if (!known) return reply(res, 404, "not found\n");
  const head = req.method === "HEAD";
  if (req.method !== "GET" && !head) {
    res.setHeader("allow", "GET, HEAD");
    return reply(res, 405, "method not allowed\n");
  }
  if (path === "/health") return reply(res, 200, "ok", undefined, head);
  let body: string;
  try {
    body = renderPrometheus(opts.metrics());
  } catch (error) {
    // A broken metrics source must not take the worker down; the scraper sees the reason.
    return reply(res, 500, `metrics unavailable: ${(error as Error)?.message ?? String(error)}\n`);
  }
  reply(res, 200, body, PROMETHEUS_CONTENT_TYPE, head);
}

/** Listens on host:port (port 0 = a free one) and resolves once bound. */
export function startHttpServer(opts: HttpOptions): Promise<HttpServerHandle> {
  const server = createServer((req, res) => handle(opts, req, res));
  // Prometheus scrapes every 15 s by default; a keep-alive longer than Node's 5 s saves reconnects.
  server.keepAliveTimeout = 20_000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: opts.host === "" ? undefined : opts.host, port: opts.port }, () => {
      server.off("error", reject);
      const addr = server.address() as AddressInfo;
      const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
      let closing: Promise<void> | undefined;
      resolve({
        url: `http://${host}:${addr.port}`,
        port: addr.port,
        close() {
          closing ??= new Promise<void>((done) => {
            server.close(() => done());
            // Every connection, not only idle ones: a client that connected and sent nothing
            // (or a slow scraper) would otherwise hold close() - and the worker's exit - open.
            server.closeAllConnections();
          });
          return closing;
        },
      });
    });
  });
}
