# tests/lib/http.sh — nginx with a generated configuration in a test's temp dir.
# Source after netns.sh. nginx runs in the foreground as one process (daemon off;
# master_process off;), so the recorded PID is the server and the program the stack hosts.
# NGINX_WORKERS=N: master_process on with N worker processes instead (the recorded PID is
# the master's).

# nginx_conf DIR PORT ROOT [EXTRA_LOCATION_DIRECTIVES] → writes DIR/nginx.conf
nginx_conf() {
    local dir=$1 port=$2 root=$3 extra=${4:-}
    mkdir -p "$dir/tmp" "$dir/logs"
    cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process $([ -n "${NGINX_WORKERS:-}" ] && echo on || echo off);
worker_processes ${NGINX_WORKERS:-1};
user root;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile ${NGINX_SENDFILE:-on};
    keepalive_timeout 15;
    default_type application/octet-stream;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen $port;
        root $root;
        location / { $extra }
    }
}
CONF
}

# nginx_start BGFUNC DIR: BGFUNC is bg_peer or bg_stack (or bg_kstack).
nginx_start() {
    local bgf=$1 dir=$2
    command -v nginx >/dev/null || skip "nginx not installed (make deps)"
    "$bgf" "$dir/nginx.out" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log"
}

# nginx_peer ROOT [EXTRA]: a kernel nginx in the peer namespace serving ROOT on port 8080
# (configuration in $TMPD/ngx), listening when this returns.
nginx_peer() {
    nginx_conf "$TMPD/ngx" 8080 "$1" "${2:-}"
    nginx_start bg_peer "$TMPD/ngx"
    wait_listen "$NS_P" 8080
}

# nginx_stack ROOT [EXTRA]: nginx on the stack serving ROOT on port 8080, reachable from the
# peer when this returns; NGX_PID is its PID (the master's with NGINX_WORKERS).
nginx_stack() {
    nginx_conf "$TMPD/ngx" 8080 "$1" "${2:-}"
    nginx_start bg_stack "$TMPD/ngx"
    NGX_PID=$BG_PID
    wait_connect "$NS_P" "$STACK_IP" 8080 20
}
