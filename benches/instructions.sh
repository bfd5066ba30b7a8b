#!/usr/bin/env bash
# Instructions counted by callgrind (stable on a noisy machine), a run of N minus a run of 0.
# Needs valgrind.
#
# `store`: per `MemoryLockStore` operation, depth 2, 1 000 background locks or `HELD` (see
# benches/store_count.rs).
# `layer`: per request through `LockLayer` and through the bare inner service, and the
# difference (see benches/layer_count.rs). `axum`: the same through an axum `Router` with the
# layer mounted by `Router::layer` and without it, and what tower-http's
# `RequestBodyLimitLayer` mounted the same way adds, for scale.
#
#   benches/instructions.sh store      # unlocked, locked, under-infinity, subtree, lock+unlock
#   benches/instructions.sh store check-locked   # a check case through `LockStore::check`
#   HELD=1000000 N=5000 benches/instructions.sh store check-subtree   # with 1e6 locks held
#   benches/instructions.sh layer      # get, put, put-token, refused
#   benches/instructions.sh axum get put
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-20000}
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 1; }
if [ "${1:-}" = store ]; then
    shift
    cases=("$@")
    [ ${#cases[@]} -gt 0 ] || cases=(unlocked locked under-infinity subtree lock+unlock)
    cargo bench --bench store_count --no-run 2>&1 | tail -1
    bin=$(ls -t target/release/deps/store_count-* | grep -v '\.d$' | head -1)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    count() { # case n -> total instructions
        valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$bin" "$1" "$2" 2>&1 |
            sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
    }
    printf '%-22s %10s\n' case instr/op
    for c in "${cases[@]}"; do
        z=$(count "$c" 0); t=$(count "$c" "$n")
        printf '%-22s %10d\n' "$c" $(( (t - z) / n ))
    done
    exit 0
fi
if [ "${1:-}" = layer ] || [ "${1:-}" = axum ]; then
    prefix=""
    [ "$1" = axum ] && prefix="axum-"
    shift
    cases=("$@")
    [ ${#cases[@]} -gt 0 ] || cases=(get put put-token refused)
    cargo bench --bench layer_count --no-run 2>&1 | tail -1
    bin=$(ls -t target/release/deps/layer_count-* | grep -v '\.d$' | head -1)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    count() { # config case n -> total instructions
        valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$bin" "$1" "$2" "$3" 2>&1 |
            sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
    }
    if [ -n "$prefix" ]; then
        printf '%-12s %10s %10s %10s %14s\n' case bare layer added 'limit added'
    else
        printf '%-12s %10s %10s %10s\n' case bare layer added
    fi
    for c in "${cases[@]}"; do
        per() { local z t; z=$(count "$1" "$c" 0); t=$(count "$1" "$c" "$n"); echo $(( (t - z) / n )); }
        b=$(per "${prefix}bare"); l=$(per "${prefix}layer")
        if [ -n "$prefix" ]; then
            printf '%-12s %10d %10d %10d %14d\n' "$c" "$b" "$l" $(( l - b )) $(( $(per axum-limit) - b ))
        else
            printf '%-12s %10d %10d %10d\n' "$c" "$b" "$l" $(( l - b ))
        fi
    done
    exit 0
fi
echo "usage: benches/instructions.sh store|layer|axum [case...]" >&2
exit 2
