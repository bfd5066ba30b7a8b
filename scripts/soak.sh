#!/usr/bin/env bash
# A reproducible, bounded soak test: builds the WebDAV example and the soak driver in release
# mode, starts the example on a free loopback port, runs the driver (many concurrent clients
# mixing LOCK/PUT/GET/PROPFIND/UNLOCK for SECS seconds, checking invariants and sampling the
# server's RSS), stops the server by PID and exits non-zero on any invariant violation.
#
#   scripts/soak.sh [--store memory|redis] [--secs 60] [--clients 32] [--paths 8] [--seed 1]
#
# --store redis builds with `--features redis` and passes REDIS_URL to the server (a private
# redis-server on a free loopback port is started when REDIS_URL is unset); the example then
# keeps its locks in Redis (`lock_store()` in examples/webdav/main.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

store=memory secs=60 clients=32 paths=8 seed=1
while [ $# -gt 0 ]; do
    case "$1" in
        --store) store=$2; shift 2 ;;
        --secs) secs=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        --paths) paths=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

. scripts/lib.sh

features=()
if [ "$store" = redis ]; then
    features=(--features redis)
    if [ -z "${REDIS_URL:-}" ]; then
        start_redis
    fi
elif [ "$store" != memory ]; then
    echo "--store must be memory or redis" >&2
    exit 2
fi

echo "== building (release)"
cargo build --release "${features[@]}" --example webdav --example soak

port=$(free_port)
target/release/examples/webdav "127.0.0.1:$port" >"$tmp/webdav.log" 2>&1 &
server=$!
pids+=($server)
wait_http "http://127.0.0.1:$port/"

echo "== soak: store=$store secs=$secs clients=$clients paths=$paths seed=$seed (server pid $server)"
status=0
target/release/examples/soak --url "http://127.0.0.1:$port" --secs "$secs" \
    --clients "$clients" --paths "$paths" --seed "$seed" --pid "$server" || status=$?
if ! kill -0 "$server" 2>/dev/null; then
    echo "the server died during the soak:" >&2
    cat "$tmp/webdav.log" >&2
    status=1
fi
exit "$status"
