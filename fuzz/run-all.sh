#!/usr/bin/env bash
# Run every fuzz target for SECONDS (default 600), JOBS targets at a time (default 2), each on
# its generated corpus (corpus/<target>, gitignored) plus the committed seeds (seeds/<target>).
# A unit slower than UNIT_TIMEOUT seconds (default 10) is a finding, like a crash.
# Logs go to logs/<target>.log; the last lines of each show the exec count and coverage.
# Needs cargo-fuzz (cargo install cargo-fuzz --locked); on a stable toolchain the nightly
# flags cargo-fuzz passes are unlocked with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET="${1:-600}"
JOBS="${JOBS:-2}"
UNIT_TIMEOUT="${UNIT_TIMEOUT:-10}"
targets=(path if_header lockinfo headers timeout propfind)
export RUSTC_BOOTSTRAP=1
cargo fuzz build
mkdir -p logs
run() {
    local t=$1
    mkdir -p "corpus/$t"
    cargo fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout="$UNIT_TIMEOUT" -print_final_stats=1 \
        >"logs/$t.log" 2>&1 \
        && echo "$t: done" || echo "$t: FAILED (see logs/$t.log, artifacts/$t/)"
}
running=0
for t in "${targets[@]}"; do
    run "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait
for t in "${targets[@]}"; do
    echo "== $t"
    grep -E '^#[0-9]+' "logs/$t.log" | tail -1 || true
    grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "logs/$t.log" || true
done
