# Shared by scripts/test-all.sh and scripts/soak.sh (sourced, not run): a private temporary
# directory, background processes stopped by PID on exit, free loopback ports, a private
# redis-server, and waiting for an HTTP server to answer.

pids=()
tmp=$(mktemp -d)
cleanup() {
    for pid in "${pids[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]:-}"; do
        [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# A TCP port on 127.0.0.1 that is free right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Start a throw-away redis-server (no persistence) on a free loopback port, wait until it
# answers, and export REDIS_URL for it.
start_redis() {
    local port
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$tmp" >"$tmp/redis.log" 2>&1 &
    pids+=($!)
    export REDIS_URL="redis://127.0.0.1:$port/"
    for _ in $(seq 1 50); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    echo "== redis-server on 127.0.0.1:$port (pid $!)"
}

# Wait (at most 10 s) until an HTTP server answers at URL.
wait_http() {
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "no HTTP answer from $1" >&2
    return 1
}
