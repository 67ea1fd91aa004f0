// Dask addresses: "scheme://location", location "host:port" for tcp/tls/ws/wss
// (distributed/comm/addressing.py `parse_address`, `parse_host_port`, `unparse_host_port`).
// Pure: string work only; never resolves names or opens anything.
import { CommError } from "./comm.ts";

/** Schemes whose location is host:port. `inproc` locations are opaque names. */
const HOST_PORT_SCHEMES = new Set(["tcp", "tls", "ws", "wss"]);

export interface ParsedAddress {
  readonly scheme: string;
  /** Host without IPv6 brackets ("::1"), or the inproc name. */
  readonly host: string;
  /** Port number; 0 means "any free port" when listening. -1 for schemes without ports. */
  readonly port: number;
}

function bad(address: string, why: string): CommError {
  return new CommError("DASK_ERR_ADDRESS", `invalid address ${JSON.stringify(address)}: ${why}`);
}

/**
 * Splits an address. Like Python with strict=False, a bare "host:port" means tcp. `defaultPort`
 * fills a missing port (Python's `parse_host_port(address, default_port)`); without it a
 * host:port scheme requires a port.
 */
export function parseAddress(address: string, defaultPort?: number): ParsedAddress {
  if (typeof address !== "string" || address.length === 0) throw bad(String(address), "empty");
  const sep = address.indexOf("://");
  const scheme = sep < 0 ? "tcp" : address.slice(0, sep).toLowerCase();
  const location = sep < 0 ? address : address.slice(sep + 3);
  if (!/^[a-z][a-z0-9+.-]*$/.test(scheme)) throw bad(address, "bad scheme");
  if (!HOST_PORT_SCHEMES.has(scheme)) {
    if (location.length === 0) throw bad(address, "empty location");
    return { scheme, host: location, port: -1 };
  }
  let host: string;
  let portText: string | undefined;
  if (location.startsWith("[")) {
    // IPv6 literal: "[::1]:8786" (unparse_host_port writes brackets whenever ':' is in the host).
    const end = location.indexOf("]");
    if (end < 0) throw bad(address, "unclosed '['");
    host = location.slice(1, end);
    const rest = location.slice(end + 1);
    if (rest.length > 0) {
      if (!rest.startsWith(":")) throw bad(address, "junk after ']'");
      portText = rest.slice(1);
    }
  } else {
    const colon = location.lastIndexOf(":");
    if (colon >= 0 && location.indexOf(":") !== colon) throw bad(address, "IPv6 hosts need [brackets]");
    host = colon < 0 ? location : location.slice(0, colon);
    portText = colon < 0 ? undefined : location.slice(colon + 1);
  }
  if (host.length === 0) throw bad(address, "empty host");
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) throw bad(address, "missing port");
    port = defaultPort;
  } else {
    if (!/^[0-9]{1,5}$/.test(portText)) throw bad(address, "port is not a number");
    port = Number(portText);
  }
  if (port > 65535) throw bad(address, "port above 65535");
  return { scheme, host, port };
}

/** Inverse of parseAddress: brackets IPv6 hosts, omits the port for port-less schemes. */
export function formatAddress(parts: { scheme: string; host: string; port: number }): string {
  if (parts.port < 0) return `${parts.scheme}://${parts.host}`;
  const host = parts.host.includes(":") ? `[${parts.host}]` : parts.host;
  return `${parts.scheme}://${host}:${parts.port}`;
}

/** Canonical spelling ("127.0.0.1:8786" -> "tcp://127.0.0.1:8786"), used as pool keys. */
export function normalizeAddress(address: string): string {
  return formatAddress(parseAddress(address));
}
