/* The event loop of streamvibe-realtime: one epoll set holding the
 * listening socket, a signalfd, every client socket and the two
 * PostgreSQL connections; a tick a second for deadlines. */
#include "realtime/sv_rt.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/sv_clock.h"
#include "core/sv_err.h"
#include "core/sv_log.h"
#include "realtime/sv_rt_listen.h"

/* Exit status for a configuration the daemon cannot run with: the pool
 * does not respawn it until it is reloaded (sysexits' EX_CONFIG). */
#define SV_RT_EXIT_CONFIG 78

char *sv_rt_json_string_dup(const char *s)
{
    json_object *o = json_object_new_string(s);
    if (o == NULL)
        return NULL;
    char *out = strdup(json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return out;
}

char *sv_rt_json_string(sv_rt *rt, const char *s)
{
    json_object *o = json_object_new_string(s);
    char *out = sv_arena_strdup(&rt->arena, json_object_to_json_string_ext(
                                                o, JSON_C_TO_STRING_PLAIN |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return out;
}

static const char *sv_rt_pg_state_name(const sv_rt_pg *pg)
{
    switch (pg->state) {
    case SV_RT_PG_READY:
    case SV_RT_PG_BUSY:
        return "up";
    case SV_RT_PG_CONNECTING:
    case SV_RT_PG_SETUP:
        return "connecting";
    default:
        return "down";
    }
}

char *sv_rt_health_json(sv_rt *rt, int *ok)
{
    *ok = sv_rt_db_ready(rt);
    int subscriptions = 0, queued = 0;
    for (sv_rt_chan *ch = rt->pg_chans; ch != NULL; ch = ch->pg_next)
        subscriptions += ch->nbinds;
    for (sv_rt_job *j = rt->jobs_head; j != NULL; j = j->next)
        queued++;
    return sv_arena_printf(
        &rt->arena,
        "{\"status\":\"%s\",\"service\":\"streamvibe-realtime\",\"pid\":%d,"
        "\"sockets\":%d,\"max_sockets\":%d,\"channels\":%d,\"subscriptions\":%d,"
        "\"database\":{\"listen\":\"%s\",\"queries\":\"%s\",\"queued\":%d},"
        "\"accepted\":%llu,\"refused\":%llu,\"joins\":%llu,\"changes\":%llu,"
        "\"delivered\":%llu,\"slow_readers\":%llu,\"db_reconnects\":%llu}",
        *ok ? "ok" : "degraded", (int)getpid(), rt->nsockets, rt->cfg.realtime_max_sockets,
        rt->nchannels, subscriptions, sv_rt_pg_state_name(&rt->pg_listen),
        sv_rt_pg_state_name(&rt->pg_query), queued, (unsigned long long)rt->stats.accepted,
        (unsigned long long)rt->stats.refused, (unsigned long long)rt->stats.joins,
        (unsigned long long)rt->stats.changes, (unsigned long long)rt->stats.delivered,
        (unsigned long long)rt->stats.slow_readers, (unsigned long long)rt->stats.db_reconnects);
}

/* As many descriptors as the hard limit allows: each socket is one. */
static int sv_rt_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 20))
        return 1 << 20;
    return (int)rl.rlim_cur;
}

static void sv_rt_begin_stop(sv_rt *rt, int signo)
{
    if (rt->stopping)
        return;
    rt->stopping = 1;
    rt->stop_deadline_ms = rt->now_ms + 2000;
    sv_log_info("rt_stop", "signal=%d sockets=%d msg=\"closing sockets\"", signo, rt->nsockets);
    if (rt->listen_fd >= 0) {
        epoll_ctl(rt->epfd, EPOLL_CTL_DEL, rt->listen_fd, NULL);
        close(rt->listen_fd);
        rt->listen_fd = -1;
        if (sv_rt_listen_is_unix(rt->cfg.realtime_listen) && !rt->listen_inherited)
            unlink(rt->cfg.realtime_listen);
    }
    /* 1001 going away: every client reconnects (to another host, or to
     * this one once it is back). */
    for (int fd = 0; fd <= rt->max_fd; fd++) {
        sv_rt_conn *c = rt->conns[fd];
        if (c == NULL || c->dead)
            continue;
        if (c->state == SV_RT_CONN_WS)
            sv_rt_conn_close_ws(rt, c, 1001, "server stopping");
        else
            sv_rt_conn_drop(rt, c, "stopping");
    }
}

/* SIGHUP: the configuration file again (limits, secret, log file); the
 * listening address needs a restart. */
static void sv_rt_reload(sv_rt *rt)
{
    sv_config fresh;
    char err[512];
    if (rt->config_path != NULL && strcmp(rt->config_path, SV_RT_CONFIG_FROM_POOL) == 0) {
        sv_log_info("rt_reload", "msg=\"configured by the pool, which restarts this daemon when its settings change\"");
        return;
    }
    if (sv_config_load(&fresh, rt->config_path, err, sizeof(err)) != SV_OK) {
        sv_log_error("rt_reload", "msg=\"configuration rejected, keeping the running one\" error=\"%s\"", err);
        sv_config_free(&fresh);
        return;
    }
    if (strcmp(fresh.realtime_listen, rt->cfg.realtime_listen) != 0)
        sv_log_warn("rt_reload", "msg=\"realtime_listen changed; takes effect after a restart\"");
    int db_changed = strcmp(fresh.database_url, rt->cfg.database_url) != 0;
    free(fresh.realtime_listen);
    fresh.realtime_listen = strdup(rt->cfg.realtime_listen);
    sv_config_free(&rt->cfg);
    rt->cfg = fresh;
    if (!rt->log_inherited && sv_log_open(rt->cfg.log_file) != 0)
        sv_log_error("rt_reload", "msg=\"cannot open log_file\" error=\"%s\"", strerror(errno));
    if (db_changed) {
        sv_rt_db_stop(rt);
        sv_rt_db_start(rt);
    }
    sv_log_info("rt_reload", "sockets=%d", rt->nsockets);
}

static void sv_rt_signals(sv_rt *rt)
{
    struct signalfd_siginfo si;
    while (read(rt->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        /* SIGUSR2 as the pool takes it: php-fpm's reload */
        int reload = si.ssi_signo == SIGHUP || si.ssi_signo == SIGUSR2;
        if (reload && !rt->stopping)
            sv_rt_reload(rt);
        else if (!reload)
            sv_rt_begin_stop(rt, (int)si.ssi_signo);
    }
}

static void sv_rt_tick(sv_rt *rt)
{
    time_t now_s = (time_t)(sv_clock_wall_ms() / 1000);
    for (int fd = 0; fd <= rt->max_fd; fd++) {
        sv_rt_conn *c = rt->conns[fd];
        if (c == NULL || c->dead)
            continue;
        sv_rt_conn_tick(rt, c);
        if (!c->dead && c->state == SV_RT_CONN_WS)
            sv_rt_chan_tick(rt, c, now_s);
    }
}

int sv_rt_run(sv_config *cfg, const char *config_path)
{
    sv_rt *rt = calloc(1, sizeof(*rt));
    char err[512];
    if (rt == NULL)
        return 1;
    rt->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    rt->config_path = config_path;
    rt->listen_fd = -1;
    rt->sigfd = -1;
    rt->listen_kind = SV_RT_EP_LISTEN;
    rt->sig_kind = SV_RT_EP_SIGNAL;
    int status = 1;

    /* Under the pool the log is a pipe to the master, which writes the
     * lines to its log_file (the daemon runs as `user`, which may not
     * open it, and the master reopens it on SIGHUP). */
    const char *log_fd = getenv("STREAMVIBE_LOG_FD");
    if (log_fd != NULL && atoi(log_fd) > 2) {
        rt->log_inherited = 1;
        sv_log_use_fd(atoi(log_fd));
        fcntl(atoi(log_fd), F_SETFD, FD_CLOEXEC);
        unsetenv("STREAMVIBE_LOG_FD");
    } else if (sv_log_open(rt->cfg.log_file) != 0) {
        fprintf(stderr, "streamvibe-realtime: cannot open log_file %s: %s\n", rt->cfg.log_file,
                strerror(errno));
        goto out;
    }
    sv_log_set_pid(getpid());
    if (rt->cfg.realtime_listen[0] == '\0' || rt->cfg.jwt_secret[0] == '\0') {
        const char *what = rt->cfg.realtime_listen[0] == '\0' ? "realtime_listen is not set"
                                                              : "jwt_secret is not set: no token could be verified";
        sv_log_error("rt_start", "error=\"%s\"", what);
        fprintf(stderr, "streamvibe-realtime: %s\n", what);
        status = SV_RT_EXIT_CONFIG;
        goto out;
    }

    /* Signals arrive on a descriptor the loop watches; everything else a
     * parent may have blocked (the pool forks with all signals blocked)
     * is unblocked. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGQUIT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGUSR2);
    sigprocmask(SIG_SETMASK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    rt->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

    /* A fan-out allocates and frees megabytes in one loop turn; glibc
     * would give them back to the kernel each time (trim, munmap) and
     * take page faults to get them again. Keep them. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 16 << 20);
    rt->nconns_max = sv_rt_raise_nofile();
    rt->conns = calloc((size_t)rt->nconns_max, sizeof(*rt->conns));
    rt->nidents_buckets = 4096;
    rt->idents = calloc(rt->nidents_buckets, sizeof(*rt->idents));
    rt->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (rt->sigfd < 0 || rt->conns == NULL || rt->idents == NULL || rt->epfd < 0) {
        sv_log_error("rt_start", "error=\"%s\"", strerror(errno));
        goto out;
    }
    if (rt->nconns_max < rt->cfg.realtime_max_sockets + 64)
        sv_log_warn("rt_start", "msg=\"descriptor limit below realtime_max_sockets\" nofile=%d max_sockets=%d",
                    rt->nconns_max, rt->cfg.realtime_max_sockets);
    rt->listen_fd = sv_rt_listen_inherited();
    rt->listen_inherited = rt->listen_fd >= 0;
    if (rt->listen_fd < 0)
        rt->listen_fd = sv_rt_listen_open(&rt->cfg, err, sizeof(err));
    if (rt->listen_fd < 0) {
        sv_log_error("rt_start", "error=\"%s\"", err);
        fprintf(stderr, "streamvibe-realtime: %s\n", err);
        goto out;
    }
    sv_arena_init(&rt->arena, 16384);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &rt->listen_kind };
    epoll_ctl(rt->epfd, EPOLL_CTL_ADD, rt->listen_fd, &ev);
    ev.data.ptr = &rt->sig_kind;
    epoll_ctl(rt->epfd, EPOLL_CTL_ADD, rt->sigfd, &ev);

    rt->now_ms = sv_clock_mono_ms();
    sv_rt_db_init(rt);
    sv_rt_db_start(rt);
    sv_log_info("rt_start", "listen=%s%s max_sockets=%d nofile=%d", rt->cfg.realtime_listen,
                rt->listen_inherited ? " (inherited)" : "", rt->cfg.realtime_max_sockets, rt->nconns_max);
    rt->next_tick_ms = rt->now_ms + 1000;

    struct epoll_event events[256];
    for (;;) {
        int64_t wait = rt->next_tick_ms - rt->now_ms;
        if (wait > 100)
            wait = 100; /* database deadlines are checked at this pace */
        if (wait < 0)
            wait = 0;
        int n = epoll_wait(rt->epfd, events, 256, (int)wait);
        rt->now_ms = sv_clock_mono_ms();
        sv_arena_reset(&rt->arena);
        for (int i = 0; i < n; i++) {
            sv_rt_ep_kind *kind = events[i].data.ptr;
            switch (*kind) {
            case SV_RT_EP_LISTEN:
                sv_rt_conn_accept(rt);
                break;
            case SV_RT_EP_SIGNAL:
                sv_rt_signals(rt);
                break;
            case SV_RT_EP_CONN: {
                sv_rt_conn *c = (sv_rt_conn *)kind;
                if (!c->dead)
                    sv_rt_conn_event(rt, c, events[i].events);
                break;
            }
            case SV_RT_EP_PG:
                sv_rt_db_event(rt, (sv_rt_pg *)kind, events[i].events);
                break;
            }
        }
        sv_rt_db_tick(rt);
        if (rt->now_ms >= rt->next_tick_ms) {
            sv_rt_tick(rt);
            rt->next_tick_ms = rt->now_ms + 1000;
        }
        sv_rt_conn_free_dead(rt);
        if (rt->stopping && (rt->nsockets == 0 || rt->now_ms >= rt->stop_deadline_ms))
            break;
    }
    for (int fd = 0; fd <= rt->max_fd; fd++)
        if (rt->conns[fd] != NULL && !rt->conns[fd]->dead)
            sv_rt_conn_drop(rt, rt->conns[fd], "stopping");
    sv_rt_conn_free_dead(rt);
    sv_rt_db_stop(rt);
    sv_log_info("rt_stop", "msg=\"stopped\" delivered=%llu", (unsigned long long)rt->stats.delivered);
    status = 0;
out:
    if (rt->listen_fd >= 0) {
        close(rt->listen_fd);
        if (sv_rt_listen_is_unix(rt->cfg.realtime_listen) && !rt->listen_inherited)
            unlink(rt->cfg.realtime_listen);
    }
    if (rt->sigfd >= 0)
        close(rt->sigfd);
    if (rt->epfd > 0)
        close(rt->epfd);
    while (rt->tinfos != NULL) {
        sv_rt_tinfo *t = rt->tinfos;
        rt->tinfos = t->next;
        free(t->role);
        free(t->schema);
        free(t->table);
        sv_rt_tinfo_clear(t);
        free(t);
    }
    sv_rt_checked_clear(rt);
    free(rt->checked);
    sv_rt_prep_clear(rt);
    free(rt->preps);
    free(rt->conns);
    free(rt->idents);
    sv_arena_free(&rt->arena);
    sv_config_free(&rt->cfg);
    free(rt);
    return status;
}
