// Public exports of dask-wasm, and nothing else (cf. msgpack-javascript src/index.ts).
// Platform-neutral: nothing exported here imports a Node built-in at load time (the TCP comm
// is loaded lazily by `connect`/`listen`; the disk spill hook is Node-only and lives at
// "dask-wasm/node").

// errors
export { DaskError, ProtocolError, PickleError, WasmError, StoreError, ConfigError, errorFromStatus } from "./errors.ts";
// Wasm core
export { setCoreModule } from "./wasm/core.ts";
// values and keys
export type { Key } from "./protocol/values.ts";
export { tuple, isTuple, isKey, keyId, keyFromId, stringifyKey } from "./protocol/values.ts";
// codecs
export { encode, decode, Float64, DEFAULT_DECODE_LIMITS } from "./protocol/msgpack.ts";
export type { DecodeLimits, DecodeOptions, EncodeOptions } from "./protocol/msgpack.ts";
export { FrameReader, WsFrameReader, packTcpMessage, encodeTcpPrelude, encodeWsMessages, DEFAULT_FRAME_LIMITS } from "./protocol/frames.ts";
export type { FrameLimits } from "./protocol/frames.ts";
export { dumps, loads, serialize, deserialize, Serialize, Serialized, Pickled, toSerialize } from "./protocol/serialize.ts";
export { NdArray } from "./protocol/numpy.ts";
export { compressBlock, decompressBlock, setLz4Module } from "./protocol/lz4.ts";
export { readPickle, describeException, OpaqueObject } from "./protocol/pickle-reader.ts";
export type { PickleReadOptions } from "./protocol/pickle-reader.ts";
export { writePickle, writeGraphPickle } from "./protocol/pickle-writer.ts";
export { GlobalRef, TaskNode, TaskRefNode, AliasNode, DataNodeNode, ContainerNode, dependencies } from "./protocol/task-spec.ts";
export type { GraphNode } from "./protocol/task-spec.ts";
// tokens -> keys
export { tokenize, taskKey, taskKeys, canonicalEncode, funcName, md5, md5Batch, TokenizeError } from "./tokens.ts";
export type { FunctionRef, TaskSpecInput } from "./tokens.ts";
// the worker's byte store
export { ByteStore, MapStore } from "./store/byte-store.ts";
export type { ByteStoreOptions, SpillHook, StoreStats } from "./store/byte-store.ts";
// comms
export { connect, listen } from "./comm/registry.ts";
export { ConnectionPool } from "./comm/pool.ts";
export { sendRecv, sendRecvAck } from "./comm/rpc.ts";
export { CommError, RemoteError } from "./comm/comm.ts";
export type { Comm, Listener, CommOptions } from "./comm/comm.ts";
// client (platform-neutral; the local cluster and single-machine schedulers are in "dask-wasm/node")
export { Client } from "./client/client.ts";
export { Future, TaskError } from "./client/future.ts";
export { asCompleted, AsCompleted } from "./client/as-completed.ts";
