#!/usr/bin/env bash
# End-to-end: requests/s and p50/p99 latency of a small axum app on 127.0.0.1, without and
# with LockLayer mounted by `Router::layer` (1e5 locks held on other paths), for GET and for
# PUT on an unlocked path, and for a PUT the layer refuses with 423 (LOCKED: the layer's
# refusal, compared with an unlocked PUT to the bare app, and with REFUSED: the bare app
# answering the same 423, headers and body from a handler, which is the cost of writing that
# answer without the layer deciding it). For scale, the same app with tower-http's
# `RequestBodyLimitLayer` mounted the same way (`limit`), for GET and PUT: a common layer that
# also wraps the response body.
#
# The servers run for the whole script (the bare app, the layered one and `limit`, on three
# ports). Each
# round runs every measurement once, each layer run right beside the bare run it is compared
# with, and every other round in the reverse order, so neither side always runs first and the
# two runs of a pair are seconds apart: the load of a shared machine moves between rounds, so
# the per-round ratio is the figure to read. The script prints every run, the per-round
# layer/bare ratios with their median, and the ratios of the medians. With PIN=1 (the default,
# on 2 or more cores with taskset) the servers run on CPU 0 (each runtime then has one worker;
# only the one under load is busy) and wrk on CPU 1, so the layer's CPU cost shows in the
# server's throughput. Needs wrk (apt-get install -y wrk).
#
#   benches/http.sh                 # ROUNDS=5 DURATION=3s CONNECTIONS=16 THREADS=1 PIN=1
#   ROUNDS=9 DURATION=5s PIN=0 benches/http.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-3s}"
CONNECTIONS="${CONNECTIONS:-16}"
THREADS="${THREADS:-1}"
PORT="${PORT:-8791}"
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
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/put.lua" <<'LUA'
wrk.method = "PUT"
wrk.body = "hello"
wrk.headers["Content-Type"] = "text/plain"
LUA

declare -A SERVER_PORT=([bare]="$PORT" [layer]="$((PORT + 1))" [limit]="$((PORT + 2))")

start_server() { # config
    local port="${SERVER_PORT[$1]}"
    "${SERVER_CPU[@]}" "$BIN" "$1" "127.0.0.1:${port}" > "$WORK/$1.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 600); do
        if (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "$1 server did not start" >&2; cat "$WORK/$1.log" >&2; exit 1
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
    [[ "$2" == REFUSED ]] && path=/refused/locked.txt
    out="$("${WRK_CPU[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${script[@]}" \
        "http://127.0.0.1:${SERVER_PORT[$1]}$path")"
    local rps p50 p99
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    p50="$(awk '$1=="50%" {print $2}' <<<"$out" | to_us)"
    p99="$(awk '$1=="99%" {print $2}' <<<"$out" | to_us)"
    printf '%-6s %-7s %12s %10s %10s\n' "$1" "$2" "$rps" "$p50" "$p99"
    echo "$1 $2 $rps $p50 $p99" >> "$WORK/results"
}

start_server bare
start_server layer
start_server limit

pinning="not pinned"
[[ ${#SERVER_CPU[@]} -gt 0 ]] && pinning="servers on CPU 0, wrk on CPU 1"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, $(nproc) cores, $pinning"
printf '%-6s %-7s %12s %10s %10s\n' config method 'req/s' 'p50 us' 'p99 us'
# One round: each layer run beside the bare run it is compared with; LOCKED sits between the
# bare PUT it is compared with and the bare REFUSED.
runs=("limit GET" "bare GET" "layer GET" "limit PUT" "bare PUT" "layer PUT" "layer LOCKED" "bare REFUSED")
for round in $(seq 1 "$ROUNDS"); do
    if (( round % 2 == 1 )); then
        for r in "${runs[@]}"; do run_wrk $r; done
    else
        for (( i=${#runs[@]}-1; i>=0; i-- )); do run_wrk ${runs[$i]}; done
    fi
done

echo
echo "layer/bare (limit/bare) req/s per round, and their median"
# name, configuration, its method, bare method: LOCKED is compared with an unlocked PUT to the
# bare app and with the bare app's own 423 (REFUSED).
rows=("GET layer GET GET" "PUT layer PUT PUT" "LOCKED layer LOCKED PUT" "LOCKED/R layer LOCKED REFUSED"
      "limitGET limit GET GET" "limitPUT limit PUT PUT")
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
for row in "${rows[@]}"; do
    read -r name cfg lm bm <<<"$row"
    ratios="$(awk -v cfg="$cfg" -v lm="$lm" -v bm="$bm" '
        $2==lm && $1==cfg {l[++nl]=$3}
        $2==bm && $1=="bare" {b[++nb]=$3}
        END { for (i=1; i<=nb; i++) printf "%.3f\n", l[i]/b[i] }' "$WORK/results")"
    printf '%-8s per round: %s  median: %s\n' "$name" "$(echo $ratios)" "$(median <<<"$ratios")"
done

echo
echo "medians over $ROUNDS rounds, and layer/bare (limit/bare)"
printf '%-8s %12s %12s %8s | %8s %8s | %8s %8s\n' method 'bare req/s' 'layer req/s' ratio 'p50 b' 'p50 l' 'p99 b' 'p99 l'
for row in "${rows[@]}"; do
    read -r name cfg lm bm <<<"$row"
    col() { local m=$lm; [[ $1 == bare ]] && m=$bm
        awk -v c="$1" -v m="$m" -v k="$2" '$1==c && $2==m {print $k}' "$WORK/results" | median; }
    br="$(col bare 3)"; lr="$(col "$cfg" 3)"
    printf '%-8s %12.0f %12.0f %8.3f | %8s %8s | %8s %8s\n' "$name" "$br" "$lr" \
        "$(awk -v a="$lr" -v b="$br" 'BEGIN {print a/b}')" \
        "$(col bare 4)" "$(col "$cfg" 4)" "$(col bare 5)" "$(col "$cfg" 5)"
done
