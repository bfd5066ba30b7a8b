#!/usr/bin/env bash
# Class 2 in front of WebDAV servers nobody here wrote: runs litmus' basic, copymove, props,
# locks and http suites against nginx (dav + dav-ext modules, no LOCK) and WsgiDAV (lock
# storage off, so class 1), each alone and through `examples/proxy.rs`, prints the counts side
# by side and checks:
#   - nginx alone: basic 16/16, copymove 10 of 13, props 10 of 14 (16 skipped), locks skipped
#     (not class 2), http 4/4;
#   - every server through the proxy: locks runs all 41 tests and fails none but those that
#     need PROPPATCH where the server has none (nginx: owner_modify, 3 times); the other
#     suites fail no test the server alone does not fail;
#   - WsgiDAV through the proxy: locks 41/41 with no warning (../shared/tools/
#     run-litmus-locks.sh with STRICT_WARNINGS=1 when it is there);
#   - the same for WsgiDAV behind two proxies on one Redis ($REDIS_URL) with nginx balancing
#     requests between them round robin, both instances answering LOCK and UNLOCK.
# Installs nginx, libnginx-mod-http-dav-ext and litmus with apt-get (as root) when missing,
# and WsgiDAV with pip into a virtualenv ($INTEROP_VENV, default ~/.cache/tower-locks/venv).
# A server that cannot be had is skipped, or a failure when CI=true.
#
# usage: scripts/interop.sh [nginx] [wsgidav]     (default: both)
# env:   LITMUS_TIMEOUT=N (per suite, default 300), INTEROP_VENV=DIR, KEEP=1 (keep the temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
if [ "${KEEP:-0}" = 1 ]; then
    trap 'for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; echo "kept $tmp"' EXIT
fi

servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(nginx wsgidav)
suites=(basic copymove props locks http)
ci=${CI:-false}
litmus_dir=/usr/libexec/litmus
htdocs=/usr/share/litmus/htdocs
limit=${LITMUS_TIMEOUT:-300}
venv=${INTEROP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tower-locks/venv}
dav_ext=/usr/lib/nginx/modules/ngx_http_dav_ext_module.so
failures=()
fail() { failures+=("$*"); echo "REQUIREMENT FAILED: $*" >&2; }

# A server that cannot be had: a failure under CI, a skip otherwise.
unavailable() {
    if [ "$ci" = true ]; then
        fail "$1 unavailable: $2"
    else
        echo "== skipping $1: $2" >&2
    fi
}

# --- installs ---------------------------------------------------------------------------
need=()
[ -x "$litmus_dir/locks" ] || need+=(litmus)
if [[ " ${servers[*]} " == *" nginx "* ]]; then
    command -v nginx >/dev/null 2>&1 || need+=(nginx)
    [ -f "$dav_ext" ] || need+=(libnginx-mod-http-dav-ext)
fi
if [[ " ${servers[*]} " == *" wsgidav "* ]] && ! [ -x "$venv/bin/wsgidav" ]; then
    python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
fi
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing ${need[*]} with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        timeout 600 apt-get update -qq >/dev/null || true
        timeout 600 apt-get install -y -qq "${need[@]}" >/dev/null || echo "apt-get install ${need[*]} failed" >&2
    else
        echo "missing ${need[*]} (Debian: apt-get install ${need[*]})" >&2
    fi
fi
[ -x "$litmus_dir/locks" ] || { echo "litmus is missing" >&2; exit 2; }
if [[ " ${servers[*]} " == *" wsgidav "* ]] && ! [ -x "$venv/bin/wsgidav" ]; then
    echo "== installing WsgiDAV into $venv"
    mkdir -p "$(dirname "$venv")"
    { python3 -m venv "$venv" && timeout 600 "$venv/bin/pip" install -q wsgidav cheroot; } ||
        echo "pip install wsgidav cheroot failed" >&2
fi

# The proxy on Redis, for two instances behind a balancer (run_two_instances); copied aside
# before the memory-store build below takes its place.
redis_proxy_bin=""
if [[ " ${servers[*]} " == *" wsgidav "* ]]; then
    echo "== cargo build --features redis --example proxy"
    cargo build -q --features redis --example proxy
    redis_proxy_bin=$tmp/proxy-redis
    cp target/debug/examples/proxy "$redis_proxy_bin"
fi
echo "== cargo build --example proxy"
cargo build -q --example proxy
proxy_bin=target/debug/examples/proxy

# --- servers ------------------------------------------------------------------------------
# start_nginx PORT: nginx (scripts/lib.sh) serving $tmp/nginx/share; sets server_pid.
start_nginx() { start_nginx_dav "$1" "$tmp/nginx"; }

# start_wsgidav PORT: anonymous, lock storage off (class 1), in-memory dead properties.
start_wsgidav() {
    local d=$tmp/wsgidav
    mkdir -p "$d/share"
    cat >"$d/wsgidav.yaml" <<EOF
host: 127.0.0.1
port: $1
server: cheroot
provider_mapping:
    "/": $d/share
http_authenticator:
    domain_controller: null
    accept_basic: false
    accept_digest: false
    default_to_digest: false
simple_dc:
    user_mapping:
        "*": true
lock_storage: false
property_manager: true
dir_browser:
    enable: false
verbose: 1
EOF
    "$venv/bin/wsgidav" --config "$d/wsgidav.yaml" >"$d/wsgidav.log" 2>&1 &
    server_pid=$!
    pids+=($server_pid)
}

# start_proxy PORT UPSTREAM_URL; sets proxy_pid.
start_proxy() {
    "$proxy_bin" "127.0.0.1:$1" "$2" >"$tmp/proxy-$1.log" 2>&1 &
    proxy_pid=$!
    pids+=($proxy_pid)
}

# start_balancer PORT BACKEND_PORT...: nginx as a round-robin HTTP proxy over the backends on
# 127.0.0.1 (each request to the next one, Host passed as the client sent it, bodies
# streamed; access.log names the backend of each request); sets balancer_pid.
start_balancer() {
    local port=$1 d=$tmp/balancer backends=""
    shift
    for b in "$@"; do backends+="server 127.0.0.1:$b max_fails=0; "; done
    mkdir -p "$d/tmp"
    cat >"$d/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections 256; }
http {
    log_format backend '\$upstream_addr \$request_method \$status';
    access_log $d/access.log backend;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    client_max_body_size 0;
    upstream instances { $backends}
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://instances;
            proxy_http_version 1.1;
            proxy_set_header Host \$http_host;
            proxy_set_header Connection "";
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_next_upstream off;
        }
    }
}
EOF
    nginx -p "$d/" -c "$d/nginx.conf" >"$d/stdout.log" 2>&1 &
    balancer_pid=$!
    pids+=($balancer_pid)
}

stop() {  # stop PID: end one server we started and reap it
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# --- litmus -------------------------------------------------------------------------------
declare -A count names
# run_suite LABEL SUITE URL: run one suite in its own directory (litmus writes debug.log
# there), record "run passed failed skipped warnings" and the names of failed, skipped and
# warned tests.
run_suite() {
    local label=$1 suite=$2 url=$3 dir=$tmp/litmus/$1/$2
    mkdir -p "$dir"
    (cd "$dir" && timeout -k 10 "$limit" "$litmus_dir/$suite" --htdocs "$htdocs" "$url" >raw.txt 2>&1) || true
    tr '\r' '\n' <"$dir/raw.txt" >"$dir/out.txt"
    local summary run=0 pass=0 failed=0 skipped warned
    summary=$(grep -a "^<- summary for \`$suite'" "$dir/out.txt" | tail -n 1 || true)
    local re='of ([0-9]+) tests run: ([0-9]+) passed, ([0-9]+) failed'
    if [[ $summary =~ $re ]]; then
        run=${BASH_REMATCH[1]} pass=${BASH_REMATCH[2]} failed=${BASH_REMATCH[3]}
    else
        fail "$label $suite: litmus gave no summary (suite missing, crashed or timed out): $(head -n 1 "$dir/raw.txt")"
    fi
    skipped=$(grep -ac 'SKIPPED' "$dir/out.txt" || true)
    warned=$(grep -ac 'WARNING:' "$dir/out.txt" || true)
    count[$label,$suite]="$run $pass $failed $skipped $warned"
    # "  4. copy_overwrite........ FAIL (…)" → "copy_overwrite"
    names[$label,$suite,fail]=$(grep -aE '^ *[0-9]+\. [a-z0-9_]+\.* *(WARNING:.*)?$|FAIL' "$dir/out.txt" |
        awk '/^ *[0-9]+\. / {t=$2; sub(/\.+$/, "", t)} /FAIL/ {print t}' | sort | uniq -c |
        awk '{print $2 ($1 > 1 ? "×" $1 : "")}' | paste -sd' ' || true)
    names[$label,$suite,skip]=$(grep -aE '^ *[0-9]+\. [a-z0-9_]+\.* *SKIPPED' "$dir/out.txt" |
        awk '{t=$2; sub(/\.+$/, "", t); print t}' | sort | uniq -c |
        awk '{print $2 ($1 > 1 ? "×" $1 : "")}' | paste -sd' ' || true)
    names[$label,$suite,warn]=$(awk '/^ *[0-9]+\. / {t=$2; sub(/\.+$/, "", t)} /WARNING:/ {print t}' "$dir/out.txt" |
        sort -u | paste -sd' ' || true)
}

declare -A total=([basic]=16 [copymove]=13 [props]=30 [locks]=41 [http]=4)
cell() {  # cell LABEL SUITE: "R/T run: P passed, F failed, S skipped, W warned"
    local run pass failed skipped warned
    read -r run pass failed skipped warned <<<"${count[$1,$2]:-0 0 0 0 0}"
    echo "$run/${total[$2]} run: $pass passed, $failed failed, $skipped skipped, $warned warn"
}

# The base names of failed tests (an "×N" repeat count dropped), one a line.
fail_set() { tr ' ' '\n' <<<"${names[$1,$2,fail]}" | sed 's/×.*//' | grep -v '^$' | sort -u || true; }

# run_server NAME PROPPATCH_MISSING: both labels, all suites, the checks shared by all servers.
run_server() {
    local name=$1 port proxy_port
    port=$(free_port)
    if ! "start_$name" "$port" || ! wait_http "http://127.0.0.1:$port/"; then
        unavailable "$name" "it did not start (see $tmp/$name/)"
        return 0
    fi
    proxy_port=$(free_port)
    start_proxy "$proxy_port" "http://127.0.0.1:$port/"
    wait_http "http://127.0.0.1:$proxy_port/" || { fail "$name: the proxy did not start"; return 0; }
    echo "== $name on 127.0.0.1:$port (pid $server_pid), proxy on 127.0.0.1:$proxy_port (pid $proxy_pid)"
    local labels=("$name+proxy")
    for suite in "${suites[@]}"; do
        run_suite "$name" "$suite" "http://127.0.0.1:$port/"
        run_suite "$name+proxy" "$suite" "http://127.0.0.1:$proxy_port/"
    done
    if [ "$name" = nginx ]; then
        # Once more with the client-visible / mapped to the upstream's /dav/: request paths,
        # Destination, Location and the hrefs of 207 bodies are mapped by the proxy.
        stop "$proxy_pid"
        start_proxy "$proxy_port" "http://127.0.0.1:$port/dav/"
        wait_http "http://127.0.0.1:$proxy_port/" || fail "$name: the proxy (base /dav/) did not start"
        for suite in "${suites[@]}"; do
            run_suite "$name+base" "$suite" "http://127.0.0.1:$proxy_port/"
        done
        labels+=("$name+base")
        [ -d "$tmp/nginx/share/dav/litmus" ] || fail "$name+base: litmus did not work under /dav/"
    fi
    if [ "$name" = wsgidav ]; then
        # The project's strict judge of the locks suite, when it is beside the checkout.
        if [ -f ../shared/tools/run-litmus-locks.sh ]; then
            STRICT_WARNINGS=1 LITMUS_TIMEOUT=$limit bash ../shared/tools/run-litmus-locks.sh \
                "http://127.0.0.1:$proxy_port/" >"$tmp/strict-$name.log" 2>&1 ||
                fail "$name+proxy: run-litmus-locks.sh (STRICT_WARNINGS=1): $(tail -n 2 "$tmp/strict-$name.log" | head -n 1)"
            echo "   strict runner: $(tail -n 1 "$tmp/strict-$name.log")"
        fi
    fi
    stop "$proxy_pid"
    if [ "$name" = wsgidav ] && run_two_instances "$name" "$port"; then
        labels+=("$name+2")
    fi
    stop "$server_pid"

    local label
    for label in "${labels[@]}"; do
        check_proxied "$name" "$label"
    done
    if [ "$name" = nginx ]; then
        check_nginx_baseline
    fi
}

# run_two_instances NAME PORT: the server on PORT behind two proxies that share one Redis
# ($REDIS_URL, one key prefix), with nginx sending each request to the next proxy in turn, so
# a lock taken through one instance is refreshed, checked and released through the other.
# Every suite runs under the label NAME+2, and both instances must have answered LOCK and
# UNLOCK requests. Returns 1 when it could not run (a failure under CI).
run_two_instances() {
    local name=$1 port=$2 a b lb
    if [ -z "${REDIS_URL:-}" ]; then
        unavailable "$name+2" "REDIS_URL is not set (scripts/test-all.sh starts a Redis)"
        return 1
    fi
    if ! command -v nginx >/dev/null 2>&1; then
        unavailable "$name+2" "nginx (the balancer) is missing"
        return 1
    fi
    a=$(free_port) b=$(free_port) lb=$(free_port)
    local prefix="interop-$$-$RANDOM" two=() p
    for p in "$a" "$b"; do
        LOCK_PREFIX=$prefix "$redis_proxy_bin" "127.0.0.1:$p" "http://127.0.0.1:$port/" \
            >"$tmp/proxy-redis-$p.log" 2>&1 &
        two+=($!)
        pids+=($!)
    done
    start_balancer "$lb" "$a" "$b"
    if ! wait_http "http://127.0.0.1:$a/" || ! wait_http "http://127.0.0.1:$b/" ||
        ! wait_http "http://127.0.0.1:$lb/"; then
        fail "$name+2: the proxies or the balancer did not start (see $tmp/proxy-redis-*.log, $tmp/balancer/)"
    elif ! grep -q "lock store: Redis" "$tmp/proxy-redis-$a.log" ||
        ! grep -q "lock store: Redis" "$tmp/proxy-redis-$b.log"; then
        fail "$name+2: the proxies do not use Redis: $(head -n 3 "$tmp/proxy-redis-$a.log" | paste -sd' ')"
    else
        echo "== $name behind two proxies on one Redis (127.0.0.1:$a, 127.0.0.1:$b), balancer 127.0.0.1:$lb"
        for suite in "${suites[@]}"; do
            run_suite "$name+2" "$suite" "http://127.0.0.1:$lb/"
        done
        if [ -f ../shared/tools/run-litmus-locks.sh ]; then
            STRICT_WARNINGS=1 LITMUS_TIMEOUT=$limit bash ../shared/tools/run-litmus-locks.sh \
                "http://127.0.0.1:$lb/" >"$tmp/strict-$name+2.log" 2>&1 ||
                fail "$name+2: run-litmus-locks.sh (STRICT_WARNINGS=1): $(tail -n 2 "$tmp/strict-$name+2.log" | head -n 1)"
            echo "   strict runner: $(tail -n 1 "$tmp/strict-$name+2.log")"
        fi
        local method served
        for p in "$a" "$b"; do
            for method in LOCK UNLOCK; do
                served=$(grep -c "^127.0.0.1:$p $method " "$tmp/balancer/access.log" || true)
                [ "${served:-0}" -gt 0 ] || fail "$name+2: the instance on port $p answered no $method"
            done
        done
    fi
    stop "$balancer_pid"
    for p in "${two[@]}"; do stop "$p"; done
    return 0
}

# check_proxied SERVER LABEL: the requirements on one server through the proxy.
check_proxied() {
    local name=$1 label=$2
    # locks runs all 41; any failure needs PROPPATCH the server lacks.
    local run pass failed skipped warned allowed=""
    read -r run pass failed skipped warned <<<"${count[$label,locks]}"
    [ "$run" = 41 ] || fail "$label locks: $run of 41 tests ran"
    [ "$skipped" = 0 ] || fail "$label locks: $skipped skipped (${names[$label,locks,skip]})"
    [ "$name" = nginx ] && allowed="owner_modify"
    for t in $(fail_set "$label" locks); do
        [[ " $allowed " == *" $t "* ]] || fail "$label locks: $t failed"
    done
    if [ "$name" = wsgidav ]; then
        [ "$pass" = 41 ] && [ "$warned" = 0 ] ||
            fail "$label locks: $pass of 41 passed, $warned warnings (${names[$label,locks,warn]})"
    fi
    # The other suites: no failure the server alone does not have.
    for suite in basic copymove props http; do
        local extra
        extra=$(comm -13 <(fail_set "$name" "$suite") <(fail_set "$label" "$suite") | paste -sd' ')
        [ -z "$extra" ] || fail "$label $suite: fails $extra, which $name alone passes"
        read -r run _ <<<"${count[$label,$suite]}"
        local run_alone
        read -r run_alone _ <<<"${count[$name,$suite]}"
        [ "$run" -ge "$run_alone" ] || fail "$label $suite: $run tests ran, $run_alone alone"
    done
}

# check_nginx_baseline: nginx alone as measured for docs/INTEROP.md.
check_nginx_baseline() {
    local want run pass failed
    for want in "basic 16 16 0" "copymove 13 10 3" "props 14 10 4" "http 4 4 0"; do
        set -- $want
        read -r run pass failed _ <<<"${count[nginx,$1]}"
        [ "$run $pass $failed" = "$2 $3 $4" ] ||
            fail "nginx alone $1: $pass/$run passed, $failed failed; expected $3/$2, $4 failed"
    done
    read -r run _ <<<"${count[nginx,locks]}"
    [ "$run" -lt 41 ] || fail "nginx alone runs the locks suite: is it class 2 now?"
}

started=$SECONDS
for server in "${servers[@]}"; do
    case $server in
    nginx)
        if ! command -v nginx >/dev/null 2>&1 || ! [ -f "$dav_ext" ]; then
            unavailable nginx "nginx or $dav_ext missing"
            continue
        fi
        ;;
    wsgidav)
        if ! [ -x "$venv/bin/wsgidav" ]; then
            unavailable wsgidav "no $venv/bin/wsgidav"
            continue
        fi
        ;;
    *) echo "unknown server $server (nginx, wsgidav)" >&2; exit 2 ;;
    esac
    run_server "$server"
done

# --- the table ----------------------------------------------------------------------------
row() { printf '%-8s %-8s | %-50s | %-50s | %-50s | %s\n' "$@"; }
# other LABEL SUITE: the cell of a run only some servers have, or "-".
other() { if [ -n "${count[$1,$2]:-}" ]; then cell "$1" "$2"; else echo -; fi; }
echo
row server suite alone "through the proxy" "through the proxy, upstream base /dav/" \
    "through two proxies on one Redis, balanced"
for server in "${servers[@]}"; do
    [ -n "${count[$server,basic]:-}" ] || continue
    for suite in "${suites[@]}"; do
        row "$server" "$suite" "$(cell "$server" "$suite")" "$(cell "$server+proxy" "$suite")" \
            "$(other "$server+base" "$suite")" "$(other "$server+2" "$suite")"
    done
done
echo
echo "failed / skipped / warned tests (alone → through the proxy → with base /dav/ → two proxies):"
for server in "${servers[@]}"; do
    [ -n "${count[$server,basic]:-}" ] || continue
    for suite in "${suites[@]}"; do
        for kind in fail skip warn; do
            a=${names[$server,$suite,$kind]:-} p=${names[$server+proxy,$suite,$kind]:-}
            b=${names[$server+base,$suite,$kind]:-} t=${names[$server+2,$suite,$kind]:-}
            [ -n "${count[$server+base,$suite]:-}" ] || b=n/a
            [ -n "${count[$server+2,$suite]:-}" ] || t=n/a
            [ -z "$a$p" ] && { [ -z "$b" ] || [ "$b" = n/a ]; } && { [ -z "$t" ] || [ "$t" = n/a ]; } && continue
            printf '  %-8s %-8s %-4s %s → %s → %s → %s\n' "$server" "$suite" "$kind" "${a:--}" "${p:--}" "${b:--}" "${t:--}"
        done
    done
done
echo "(${SECONDS}s in all, $((SECONDS - started))s of litmus; KEEP=1 keeps the logs: $tmp/litmus/<server>/<suite>/debug.log)"

if [ ${#failures[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${failures[@]}" >&2
    exit 1
fi
echo "interop: all requirements met"
