#!/usr/bin/env bash
# Instructions per request the layer adds, counted by callgrind (stable on a noisy machine).
# For each case: (layer run − bare run) / N, each run with start-up subtracted (a run of 0
# requests). The last column is the floor of any middleware that gives responses its own body
# type: the bare service with only its response body wrapped in `ResponseBody` (as the layer
# does for everything it forwards), minus bare. Needs valgrind.
#
# With `store` first: instructions per `MemoryLockStore` operation instead (depth 2, 1 000
# background locks or `HELD`; see benches/store_count.rs), a run of N minus a run of 0.
#
#   benches/instructions.sh            # N=20000, every case
#   N=5000 benches/instructions.sh GET
#   benches/instructions.sh store      # unlocked, locked, under-infinity, subtree, lock+unlock
#   benches/instructions.sh store check-locked   # a check case through `LockStore::check`
#   HELD=1000000 N=5000 benches/instructions.sh store check-subtree   # with 1e6 locks held
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
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(GET PUT PUT-token PUT-423)
cargo bench --bench layer_count --no-run 2>&1 | tail -1
bin=$(ls -t target/release/deps/layer_count-* | grep -v '\.d$' | head -1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
count() { # which case n -> total instructions
    valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$bin" "$1" "$2" "$3" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-10s %14s %14s %14s %16s\n' case bare/req layer/req overhead/req body-map-floor
for c in "${cases[@]}"; do
    b0=$(count bare "$c" 0); b=$(count bare "$c" "$n")
    l0=$(count layer "$c" 0); l=$(count layer "$c" "$n")
    m0=$(count body-map "$c" 0); m=$(count body-map "$c" "$n")
    bare=$(( (b - b0) / n )); layer=$(( (l - l0) / n )); mapped=$(( (m - m0) / n ))
    printf '%-10s %14d %14d %14d %16d\n' "$c" "$bare" "$layer" $(( layer - bare )) $(( mapped - bare ))
done
