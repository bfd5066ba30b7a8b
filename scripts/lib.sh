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

# Start nginx as a class-1 WebDAV server (the stock dav module and nginx-dav-ext-module: PUT,
# DELETE, MKCOL, COPY, MOVE, PROPFIND, OPTIONS; no LOCK, no PROPPATCH) on 127.0.0.1:PORT,
# serving DIR/share (with an empty DIR/share/dav/ for base-path tests), from a private
# nginx.conf in DIR (daemon off, pid, logs and temp files in DIR, run as root). Needs the
# Debian packages nginx and libnginx-mod-http-dav-ext. Sets server_pid (also in pids).
start_nginx_dav() {
    local port=$1 d=$2
    mkdir -p "$d/share/dav" "$d/tmp"
    cat >"$d/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log info;
load_module /usr/lib/nginx/modules/ngx_http_dav_ext_module.so;
events { worker_connections 256; }
http {
    access_log $d/access.log;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    client_max_body_size 0;
    server {
        listen 127.0.0.1:$port;
        root $d/share;
        location / {
            dav_methods PUT DELETE MKCOL COPY MOVE;
            dav_ext_methods PROPFIND OPTIONS;
            create_full_put_path on;
            dav_access user:rw group:rw all:r;
            autoindex on;
        }
    }
}
EOF
    nginx -p "$d/" -c "$d/nginx.conf" >"$d/stdout.log" 2>&1 &
    server_pid=$!
    pids+=($server_pid)
}
