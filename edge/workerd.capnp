# workerd config for the dask-wasm edge worker (src/edge/entry.ts).
# Build the bundle first:  node src/cli/main.ts edge-bundle --module examples/tasks.js --wasm build/examples/tasks.wasm
# Run:                     npx workerd serve edge/workerd.capnp --socket-addr http=127.0.0.1:8791
# Then start a worker:     curl -N 'http://127.0.0.1:8791/start?gateway=http://127.0.0.1:8790'
# The worker connects OUT to the gateway; workerd never accepts a dask connection itself.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .edgeWorker),
    # The gateway usually runs on a private or loopback address: allow outbound to it.
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:8791", http = (), service = "main") ],
);

const edgeWorker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "../build/edge/worker.js"),
    (name = "core.wasm", wasm = embed "../build/edge/core.wasm"),
    (name = "lz4.wasm", wasm = embed "../build/edge/lz4.wasm"),
    (name = "task-modules/tasks.wasm", wasm = embed "../build/edge/task-modules/tasks.wasm"),
  ],
  compatibilityDate = "2025-06-01",
  globalOutbound = "internet",
);
