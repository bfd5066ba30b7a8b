#!/usr/bin/env bash
# Real WebDAV clients against the lock layer: cadaver, rclone and webdav4 (Python), against
# examples/webdav (memory store) and against examples/proxy in front of nginx (class 1). For
# each client and server:
#   1. foreign lock: "another client" (curl) LOCKs the file; the client's write fails with 423
#      and the file keeps its content;
#   2. own lock: cadaver takes its own lock (`lock`, `put`, `unlock`); rclone and webdav4 cannot
#      lock, so they send the token of the lock curl took in an `If` header (rclone
#      `--header`, webdav4 `upload_fileobj(headers=…)`), and the write goes through.
# Installs cadaver, rclone, nginx and libnginx-mod-http-dav-ext with apt-get (as root) when
# missing, and webdav4 with pip into a virtualenv ($INTEROP_VENV, default
# ~/.cache/tower-locks/venv, shared with scripts/interop.sh). A client or server that cannot be
# had is skipped, or a failure when CI=true.
#
# usage: scripts/clients.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ci=${CI:-false}
venv=${INTEROP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tower-locks/venv}
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS  $*"; }
fail() { failed=$((failed + 1)); echo "FAIL  $*"; }
unavailable() {
    if [ "$ci" = true ]; then fail "$1 unavailable: $2"; else echo "SKIP  $1: $2"; fi
}

need=()
command -v cadaver >/dev/null 2>&1 || need+=(cadaver)
command -v rclone >/dev/null 2>&1 || need+=(rclone)
command -v nginx >/dev/null 2>&1 || need+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_http_dav_ext_module.so ] || need+=(libnginx-mod-http-dav-ext)
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${need[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq >/dev/null || true
    timeout 600 apt-get install -y -qq "${need[@]}" >/dev/null || echo "apt-get install ${need[*]} failed" >&2
fi
if ! [ -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import webdav4' 2>/dev/null; then
    echo "== installing webdav4 into $venv"
    mkdir -p "$(dirname "$venv")"
    { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } &&
        timeout 600 "$venv/bin/pip" install -q webdav4 || echo "pip install webdav4 failed" >&2
fi

echo "== cargo build --example webdav --example proxy"
cargo build -q --example webdav --example proxy

# --- servers --------------------------------------------------------------------------------
targets=()
port=$(free_port)
target/debug/examples/webdav "127.0.0.1:$port" >"$tmp/webdav.log" 2>&1 &
pids+=($!)
if wait_http "http://127.0.0.1:$port/"; then
    targets+=("webdav=http://127.0.0.1:$port/")
else
    fail "examples/webdav did not start"
fi
if command -v nginx >/dev/null 2>&1 && [ -f /usr/lib/nginx/modules/ngx_http_dav_ext_module.so ]; then
    nginx_port=$(free_port)
    start_nginx_dav "$nginx_port" "$tmp/nginx"
    proxy_port=$(free_port)
    target/debug/examples/proxy "127.0.0.1:$proxy_port" "http://127.0.0.1:$nginx_port/" \
        >"$tmp/proxy.log" 2>&1 &
    pids+=($!)
    if wait_http "http://127.0.0.1:$nginx_port/" && wait_http "http://127.0.0.1:$proxy_port/"; then
        targets+=("proxy+nginx=http://127.0.0.1:$proxy_port/")
    else
        fail "nginx or the proxy did not start"
    fi
else
    unavailable nginx "nginx or libnginx-mod-http-dav-ext missing"
fi

# --- curl, "another client" -----------------------------------------------------------------
lockinfo='<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>another client</D:owner></D:lockinfo>'
put() { curl -sS -m 10 -o /dev/null -w '%{http_code}' -X PUT --data-binary "$2" "$1"; }
get() { curl -sS -m 10 "$1"; }
lock() {  # lock URL: LOCK it for 120 s, print the token (without <>)
    curl -sS -m 10 -D - -o /dev/null -X LOCK -H 'Content-Type: application/xml' \
        -H 'Timeout: Second-120' --data-binary "$lockinfo" "$1" |
        tr -d '\r' | awk 'tolower($0) ~ /^lock-token:/ { sub(/^[^:]*: */, ""); gsub(/[<>]/, ""); print }'
}
unlock() { curl -sS -m 10 -o /dev/null -w '%{http_code}' -X UNLOCK -H "Lock-Token: <$2>" "$1"; }

# --- the clients ------------------------------------------------------------------------------
# Each: client_write CLIENT BASE PATH CONTENT [TOKEN]: write CONTENT to BASE/PATH; TOKEN is
# sent in an If header (not for cadaver, which locks itself: with TOKEN it runs lock, put,
# unlock). Output in $out; exit status of the client.
client_write() {
    local client=$1 base=$2 path=$3 content=$4 token=${5:-} src=$tmp/upload.txt
    printf '%s' "$content" >"$src"
    case $client in
    cadaver)
        local script="put $src $(basename "$path")"
        [ -z "$token" ] || script="lock $(basename "$path")
$script
unlock $(basename "$path")"
        out=$(printf '%s\nquit\n' "$script" |
            HOME=$tmp timeout 60 cadaver "$base$(dirname "$path")/" 2>&1) || return 1
        ;;
    rclone)
        local header=()
        [ -z "$token" ] || header=(--header "If: <$base$path> (<$token>)")
        out=$(RCLONE_CONFIG=$tmp/rclone.conf timeout 60 rclone copyto "$src" ":webdav:$path" \
            --webdav-url "$base" --ignore-times --retries 1 --low-level-retries 1 \
            --contimeout 5s --timeout 20s "${header[@]}" 2>&1) || return 1
        ;;
    webdav4)
        out=$(timeout 60 "$venv/bin/python" - "$base" "$path" "$src" "$token" 2>&1 <<'PY'
import sys
from webdav4.client import Client

base, path, src, token = sys.argv[1:5]
client = Client(base, timeout=20, retry=False)
try:
    with open(src, "rb") as f:
        client.upload_fileobj(f, path, overwrite=True,
                              headers={"If": f"(<{token}>)"} if token else None)
except Exception as e:  # the 423 is an HTTPError
    print(f"upload failed: {type(e).__name__}: {e}")
    sys.exit(1)
print("uploaded")
PY
        ) || return 1
        ;;
    esac
}

client_available() {
    case $1 in
    cadaver | rclone) command -v "$1" >/dev/null 2>&1 ;;
    webdav4) "$venv/bin/python" -c 'import webdav4' 2>/dev/null ;;
    esac
}

: >"$tmp/rclone.conf"
for target in "${targets[@]}"; do
    name=${target%%=*} base=${target#*=}
    curl -sS -m 10 -o /dev/null -X MKCOL "${base}clients/" || true
    for client in cadaver rclone webdav4; do
        if ! client_available "$client"; then
            unavailable "$client" "not installed"
            continue
        fi
        path=clients/$client.txt url=$base$path
        code=$(put "$url" "v1 from curl")
        [[ $code == 20? ]] || { fail "$name: PUT $path: $code"; continue; }

        # 1. A foreign lock: the client's write fails with 423, the file is unchanged.
        token=$(lock "$url")
        [ -n "$token" ] || { fail "$name: LOCK $path gave no token"; continue; }
        if client_write "$client" "$base" "$path" "v2 from $client" && ! grep -q '423' <<<"$out"; then
            fail "$name $client: wrote over a foreign lock: $out"
        elif grep -q '423' <<<"$out" && [ "$(get "$url")" = "v1 from curl" ]; then
            pass "$name $client: foreign lock → 423 ($(grep -m1 -o '[^:]*423[^.]*' <<<"$out" | head -c 60 | tr -d '\n' | sed 's/^ *//'))"
        else
            fail "$name $client: foreign lock: no 423 or content changed: $out"
        fi

        # 2. Its own lock (cadaver) or the lock's token (the others) lets it write.
        if [ "$client" = cadaver ]; then
            [ "$(unlock "$url" "$token")" = 204 ] || fail "$name: UNLOCK $path"
            token=own
        fi
        if client_write "$client" "$base" "$path" "v3 from $client" "$token" &&
            [ "$(get "$url")" = "v3 from $client" ]; then
            pass "$name $client: $([ "$client" = cadaver ] && echo "own lock (lock, put, unlock)" || echo "lock token in an If header") → written"
        else
            fail "$name $client: own lock: write refused: $out"
        fi
        if [ "$client" = cadaver ]; then
            # cadaver's unlock released its lock: anyone may write again.
            [[ $(put "$url" "v4 from curl") == 20? ]] || fail "$name cadaver: its lock was left behind"
        else
            [ "$(unlock "$url" "$token")" = 204 ] || fail "$name: UNLOCK $path after $client"
        fi
    done
done

echo "clients: $passed passed, $failed failed"
[ "$failed" = 0 ]
