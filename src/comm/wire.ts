// Default codec and framing for comms: TCP framing from src/protocol/frames.ts and messages
// through src/protocol/serialize.ts (msgpack frame 0 + Serialized sub-frames).
// Pure glue: no IO, no timers. A comm uses whichever codec its caller passes
// (CommOptions.codec), DEFAULT_CODEC otherwise.
import type { FrameLimits as ProtocolFrameLimits } from "../protocol/frames.ts";
import { encodeTcpPrelude, FrameReader, packTcpMessage } from "../protocol/frames.ts";
import { dumps, loads, type LoadsOptions } from "../protocol/serialize.ts";
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
 * Messages through src/protocol/serialize.ts: `__Serialized__`/`__Pickled__` sub-frames,
 * lz4, shards. `loadsOptions.deserialize: false` keeps values opaque for relaying (what the
 * scheduler does). Sub-frames are compressed only with a negotiated "lz4" (serialize.ts
 * implements no other codec; the default handshake negotiates none).
 */
export function serializeCodec(loadsOptions: LoadsOptions = {}): MessageCodec {
  return {
    dumps: (msg, context) => dumps(msg, { compression: context.compression === "lz4" ? "lz4" : null }),
    loads: (frames) => loads(frames, loadsOptions),
  };
}

/** What comms use unless told otherwise: values deserialized on arrival. */
export const DEFAULT_CODEC: MessageCodec = Object.freeze(serializeCodec());
