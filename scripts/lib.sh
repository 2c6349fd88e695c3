# Shared shell helpers for scripts/install-deps, scripts/check and
# scripts/run. Source it; it sets SV_ROOT to the repository root.
# shellcheck shell=bash

SV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

sv_say()  { printf '==> %s\n' "$*"; }
sv_warn() { printf 'warning: %s\n' "$*" >&2; }
sv_die()  { printf 'error: %s\n' "$*" >&2; exit 1; }

# The Debian 12 packages the project needs to build, test and run.
SV_PACKAGES=(
    build-essential autoconf automake libtool pkg-config
    libfcgi-dev libpq-dev libjson-c-dev libcurl4-openssl-dev libsodium-dev libcrypt-dev
    libwslay-dev libssl-dev
    postgresql-15 postgresql-client-15 postgresql-15-cron
    nginx-light fcgiwrap spawn-fcgi
    libdbd-pg-perl libwww-perl
    wrk valgrind curl ca-certificates procps
    logrotate apache2 libapache2-mod-fcgid
)

# Prints the packages of SV_PACKAGES that are not installed.
sv_missing_packages() {
    local p
    for p in "${SV_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "$p"
        fi
    done
}

# Directory of the PostgreSQL server programs (initdb, postgres, pg_ctl).
sv_pg_bindir() {
    local d
    if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/postgres" ]; then
        echo "$PG_BINDIR"; return 0
    fi
    for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5 -n -r); do
        if [ -x "$d/postgres" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
    done
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir)
        [ -x "$d/postgres" ] && { echo "$d"; return 0; }
    fi
    return 1
}

# The OS user PostgreSQL runs as: postgres when we are root (it refuses to
# run as root), else ourselves.
sv_pg_user() {
    if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi
}

# Run a command as the PostgreSQL OS user.
sv_as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# True when user $1 can traverse every directory down to $2.
sv_user_can_reach() {
    local user=$1 dir=$2
    if [ "$(id -u)" -ne 0 ]; then return 0; fi
    runuser -u "$user" -- test -x "$dir" 2>/dev/null
}

# Is the process in pid file $1 alive?
sv_pidfile_alive() {
    local f=$1 pid
    [ -s "$f" ] || return 1
    pid=$(head -n1 "$f" | tr -dc '0-9')
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Stop the process named by pid file $1: signal $2 (default TERM), wait up
# to $3 seconds (default 30), then SIGKILL.
sv_stop_pidfile() {
    local f=$1 sig=${2:-TERM} wait=${3:-30} pid i
    [ -s "$f" ] || return 0
    pid=$(head -n1 "$f" | tr -dc '0-9')
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < wait * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    sv_warn "pid $pid (from $f) did not stop after SIG$sig in ${wait}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
}

# Render nginx/streamvibe.conf.in to $1. Variables: LISTEN PREFIX SOCKET
# BODY_LIMIT USER_DIRECTIVE WORKER_PROCESSES READ_TIMEOUT REALTIME ERROR_LOG_LEVEL (the @X@
# placeholders);
# the extra hooks are emptied.
sv_render_nginx() {
    local out=$1 tpl="$SV_ROOT/nginx/streamvibe.conf.in"
    [ -r "$tpl" ] || sv_die "missing $tpl"
    sed -e "s|@LISTEN@|${LISTEN}|g" \
        -e "s|@PREFIX@|${PREFIX}|g" \
        -e "s|@SOCKET@|${SOCKET}|g" \
        -e "s|@BODY_LIMIT@|${BODY_LIMIT}|g" \
        -e "s|@USER_DIRECTIVE@|${USER_DIRECTIVE}|g" \
        -e "s|@WORKER_PROCESSES@|${WORKER_PROCESSES:-auto}|g" \
        -e "s|@READ_TIMEOUT@|${READ_TIMEOUT:-75s}|g" \
        -e "s|@ERROR_LOG_LEVEL@|${ERROR_LOG_LEVEL:-warn}|g" \
        -e "s|@REALTIME@|${REALTIME:-unix:${PREFIX}/no-realtime.sock}|g" \
        -e "s|@HTTP_EXTRA@||g" -e "s|@SERVER_EXTRA@||g" -e "s|@FASTCGI_EXTRA@||g" \
        "$tpl" > "$out.tmp"
    if grep -q '@[A-Z_]*@' "$out.tmp"; then
        sv_die "unreplaced placeholder in $out: $(grep -o '@[A-Z_]*@' "$out.tmp" | sort -u | tr '\n' ' ')"
    fi
    mv "$out.tmp" "$out"
}
