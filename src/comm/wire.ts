// Default codec and framing for comms: TCP framing from src/protocol/frames.ts and messages
// through the msgpack facade. Pure glue: no IO, no timers.
//
// `msgpackCodec` handles frame 0 only: it is what the handshake and every plain-msgpack RPC
// need (identity, versions, register-client...). Messages that carry `__Serialized__` sub-frames
// need src/protocol/serialize.ts `dumps`/`loads`; `serializeCodec` wraps those, and a comm uses
// whichever codec its caller passes (CommOptions.codec), this one by default.
import type { FrameLimits as ProtocolFrameLimits } from "../protocol/frames.ts";
import { encodeTcpPrelude, FrameReader, packTcpMessage } from "../protocol/frames.ts";
import { decode, encode } from "../protocol/msgpack.ts";
import { ProtocolError } from "../errors.ts";
import type { FrameLimits, Framing, MessageCodec } from "./comm.ts";

/**
 * Above this size a message is written as prelude + the frames themselves instead of one
 * copied buffer: dask's own TCP.write switches at 128 KiB (comm/tcp.py, "coalesce small
 * frames"), and below it one syscall beats avoiding a memcpy.
 */
export const COALESCE_LIMIT = 128 * 1024;

/** The TCP framing (DASK-PROTOCOL §2) with the given reader limits. */
export function tcpFraming(limits?: FrameLimits): Framing {
  const resolved: Partial<ProtocolFrameLimits> = { ...limits };
  return {
    createReader: () => new FrameReader(resolved),
    pack(frames) {
      let total = 0;
      for (const f of frames) total += f.length;
      if (total < COALESCE_LIMIT) return [packTcpMessage(frames)];
      return [encodeTcpPrelude(frames), ...frames];
    },
  };
}

/**
 * frame 0 <-> msgpack, no sub-frames. Reading a message with more frames is refused with a
 * coded error rather than silently dropping its payload.
 */
export const msgpackCodec: MessageCodec = Object.freeze({
  dumps(msg: unknown): Uint8Array[] {
    return [encode(msg)];
  },
  loads(frames: Uint8Array[]): unknown {
    if (frames.length !== 1) {
      throw new ProtocolError("DASK_ERR_COMM_SUBFRAMES", `message with ${frames.length} frames needs the serialize codec`);
    }
    return decode(frames[0]!);
  },
});
