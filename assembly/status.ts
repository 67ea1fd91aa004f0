// Status codes and limits shared by the AssemblyScript kernels (assembly/) and the TypeScript
// shell (src/). Both compilers import this one file (STYLE.md §3), so it holds only numeric
// constants: AS reads them as i32 globals, TS as numbers. Map codes to errors only in
// src/errors.ts (`errorFromStatus`).
//
// Convention: kernels return an i32; >= 0 is success (often a count or length), -1 means
// "need more bytes" (a value, not an error), <= -2 is a coded error. Families own ranges:
// general -2..-99, frames -100.., msgpack -200.., tokens -300.., store -400.., pickle -500..

export const STATUS_OK = 0;
export const STATUS_NEED_MORE = -1;

// general
export const ERR_OUT_OF_MEMORY = -2; // memory.grow failed inside the module
export const ERR_BAD_ARGUMENT = -3; // a pointer/length/region id outside what the module owns

// frames (TCP prelude and WebSocket framing)
export const ERR_FRAME_TOO_LARGE = -100; // one frame longer than the configured maxFrameBytes
export const ERR_MESSAGE_TOO_LARGE = -101; // a message longer than the configured maxMessageBytes
export const ERR_TOO_MANY_FRAMES = -102; // frame count above maxFrames
export const ERR_FRAME_BAD_PRELUDE = -103; // lengths in the prelude inconsistent with the total
export const ERR_FRAME_WS_COUNT = -104; // WebSocket frame-count message is not exactly one u64

// msgpack
export const ERR_MSGPACK_INVALID = -200; // reserved byte 0xc1 or a malformed encoding
export const ERR_MSGPACK_TOO_DEEP = -201; // nesting above maxDepth
export const ERR_MSGPACK_TOO_LARGE = -202; // a str/bin/array/map length above its limit
export const ERR_MSGPACK_EXT = -203; // ext types are never sent by dask and are refused
export const ERR_MSGPACK_TRAILING = -204; // bytes left over after one complete value
export const ERR_MSGPACK_UTF8 = -205; // str payload that is not valid UTF-8
export const ERR_MSGPACK_UNSUPPORTED = -206; // a value the encoder cannot represent
export const ERR_MSGPACK_TRUNCATED = -207; // input ends inside a value (decode() wants exactly one whole value)
export const ERR_MSGPACK_STR_TOO_LARGE = -208; // a str longer than maxStrBytes
export const ERR_MSGPACK_BIN_TOO_LARGE = -209; // a bin longer than maxBinBytes
export const ERR_MSGPACK_ARRAY_TOO_LONG = -210; // an array with more than maxArrayLength items
export const ERR_MSGPACK_MAP_TOO_LONG = -211; // a map with more than maxMapLength entries

// tokens
export const ERR_TOKEN_INPUT = -300; // batch offsets/lengths inconsistent

// store
export const ERR_STORE_MISSING = -400; // key not in the store
export const ERR_STORE_INDEX_FULL = -401; // index cannot grow (wasm32 limit)
export const ERR_STORE_DUPLICATE = -402; // put of a key that is already present
export const ERR_STORE_SPILL_FAILED = -403; // the spill hook threw (write/read/remove); nothing was lost

// Scratch regions (assembly/memory.ts): each kernel owns its ids, so two kernels never share
// bytes inside one instance.
export const REGION_FRAME_IN = 0;
export const REGION_FRAME_OUT = 1;
export const REGION_MSGPACK_IN = 2;
export const REGION_MSGPACK_TAPE = 3;
export const REGION_MSGPACK_OUT = 4;
export const REGION_TOKEN_IN = 5;
export const REGION_TOKEN_OUT = 6;
export const REGION_STORE_KEY = 7;
export const REGION_COUNT = 8;
