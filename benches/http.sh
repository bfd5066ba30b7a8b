#!/usr/bin/env bash
# End-to-end: requests/s and p50/p99 latency of a small axum app on 127.0.0.1, without and
# with LockLayer mounted by `Router::layer` (1e5 locks held on other paths), for GET and for
# PUT on an unlocked path, and for a PUT the layer refuses with 423 (LOCKED: the layer's
# refusal, compared with an unlocked PUT to the bare app).
# The two configurations alternate ROUNDS times, in the order bare-layer, layer-bare, ... so
# neither always runs first; the script prints every run, the per-round layer/bare ratios and
# the ratios of the medians. With PIN=1 (the default, on 2 or more cores with taskset) the
# server runs on CPU 0 (its runtime then has one worker) and wrk on CPU 1, so the two do not
# steal each other's core and the layer's CPU cost shows in the server's throughput.
# Needs wrk (apt-get install -y wrk).
#
#   benches/http.sh                 # ROUNDS=3 DURATION=5s CONNECTIONS=16 THREADS=1 PIN=1
#   ROUNDS=5 DURATION=10s PIN=0 benches/http.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5s}"
CONNECTIONS="${CONNECTIONS:-16}"
THREADS="${THREADS:-1}"
PORT="${PORT:-8791}"
URL="http://127.0.0.1:${PORT}"
PIN="${PIN:-1}"
SERVER_CPU=()
WRK_CPU=()
if [[ "$PIN" == 1 ]] && command -v taskset >/dev/null && (( $(nproc) >= 2 )); then
    SERVER_CPU=(taskset -c 0)
    WRK_CPU=(taskset -c 1)
fi

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
cargo build --release --example http_server --quiet
BIN=target/release/examples/http_server

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/put.lua" <<'LUA'
wrk.method = "PUT"
wrk.body = "hello"
wrk.headers["Content-Type"] = "text/plain"
LUA

start_server() {
    "${SERVER_CPU[@]}" "$BIN" "$1" "127.0.0.1:${PORT}" > "$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1
}

stop_server() {
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
}

# wrk's latency figures in microseconds.
to_us() {
    awk '{ v=$1; if (v ~ /us$/) { sub(/us$/,"",v); print v }
           else if (v ~ /ms$/) { sub(/ms$/,"",v); print v*1000 }
           else if (v ~ /s$/)  { sub(/s$/,"",v);  print v*1000000 } }'
}

run_wrk() { # config method
    local out script=() path=/docs/a.txt
    [[ "$2" != GET ]] && script=(-s "$WORK/put.lua")
    [[ "$2" == LOCKED ]] && path=/docs/locked.txt
    out="$("${WRK_CPU[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${script[@]}" "$URL$path")"
    local rps p50 p99
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    p50="$(awk '$1=="50%" {print $2}' <<<"$out" | to_us)"
    p99="$(awk '$1=="99%" {print $2}' <<<"$out" | to_us)"
    printf '%-6s %-4s %12s %10s %10s\n' "$1" "$2" "$rps" "$p50" "$p99"
    echo "$1 $2 $rps $p50 $p99" >> "$WORK/results"
}

pinning="not pinned"
[[ ${#SERVER_CPU[@]} -gt 0 ]] && pinning="server on CPU 0, wrk on CPU 1"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, $(nproc) cores, $pinning"
printf '%-6s %-4s %12s %10s %10s\n' config method 'req/s' 'p50 us' 'p99 us'
for round in $(seq 1 "$ROUNDS"); do
    order=(bare layer)
    (( round % 2 == 0 )) && order=(layer bare)
    for config in "${order[@]}"; do
        start_server "$config"
        run_wrk "$config" GET
        run_wrk "$config" PUT
        [[ "$config" == layer ]] && run_wrk "$config" LOCKED
        stop_server
    done
done

echo
echo "layer/bare req/s per round (each round runs both back to back; the load on a shared"
echo "machine moves between rounds, so the per-round ratio is the figure to read)"
for method in GET PUT LOCKED; do
    # LOCKED (layer) is compared with an unlocked PUT to the bare app.
    ratios="$(awk -v m="$method" '
        $2==m && $1=="layer" {l[++nl]=$3}
        $2==(m=="LOCKED" ? "PUT" : m) && $1=="bare" {b[++nb]=$3}
        END { for (i=1; i<=nb; i++) printf "%.3f\n", l[i]/b[i] }' "$WORK/results")"
    printf '%-6s per round: %s  median: %s\n' "$method" "$(echo $ratios)" \
        "$(sort -g <<<"$ratios" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')"
done

echo
echo "medians over $ROUNDS rounds, and layer/bare"
printf '%-4s %12s %12s %8s | %8s %8s | %8s %8s\n' method 'bare req/s' 'layer req/s' ratio 'p50 b' 'p50 l' 'p99 b' 'p99 l'
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
for method in GET PUT LOCKED; do
    bm=$method; [[ $method == LOCKED ]] && bm=PUT
    col() { local m=$method; [[ $1 == bare ]] && m=$bm
        awk -v c="$1" -v m="$m" -v k="$2" '$1==c && $2==m {print $k}' "$WORK/results" | median; }
    br="$(col bare 3)"; lr="$(col layer 3)"
    printf '%-4s %12.0f %12.0f %8.3f | %8s %8s | %8s %8s\n' "$method" "$br" "$lr" \
        "$(awk -v a="$lr" -v b="$br" 'BEGIN {print a/b}')" \
        "$(col bare 4)" "$(col layer 4)" "$(col bare 5)" "$(col layer 5)"
done
