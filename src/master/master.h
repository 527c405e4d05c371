/*
 * master.h - the resident supervisor (internal interfaces).
 *
 * master_main.c     start-up, lock, signals, reload and stop
 * master_service.c  services built from master.cf: listeners, reload diff
 * master_proc.c     child processes: spawn, status, reap, throttle, wakeup
 */
#ifndef POSTERN_MASTER_H
#define POSTERN_MASTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "events.h"
#include "master_proto.h"
#include "mastercf.h"

struct master_service {
    char   *name;               /* master.cf service field */
    enum mastercf_type type;
    char   *path;               /* unix/fifo: socket path, else NULL */
    int     listen_fds[MASTER_MAX_LISTEN];
    int     nlisten;
    bool    listening;          /* listen fds registered in the event loop */

    /* From master.cf, refreshed on reload. */
    int     maxproc;            /* 0 = unlimited */
    int     wakeup;
    bool    wakeup_if_used;
    bool    unpriv;
    bool    chroot;
    char  **exec_argv;          /* full argv for exec, NULL-terminated */
    char   *exec_path;

    int     status_fd;          /* read end of the status pipe */
    int     status_wfd;         /* write end, handed to children */
    int     watch_rfd;          /* current generation's watch pipe */
    int     watch_wfd;
    unsigned generation;

    int     total;              /* processes of the current generation */
    int     avail;              /* of which waiting for a client */
    bool    used;               /* a process was ever started */
    bool    throttled;
    bool    retired;            /* removed by reload; freed when no process is left */
    uint64_t wakeup_timer;
    uint64_t throttle_timer;

    struct master_service *next;
};

struct master_proc {
    pid_t   pid;
    struct master_service *svc;
    unsigned generation;
    bool    avail;
    long    use_count;
    struct master_proc *next;
};

/* Global state of the one master process. */
struct master_state {
    const char *config_dir;
    config_t *cfg;
    event_loop_t *loop;
    struct master_service *services;
    struct master_proc *procs;
    int     nprocs;
    bool    stopping;
};

extern struct master_state master;

/* master_service.c */
bool    master_services_build(const struct mastercf *mc, bool reload);
void    master_service_update(struct master_service *svc);
void    master_service_retire(struct master_service *svc);
void    master_services_unwatch_all(void);
void    master_services_close_all(void);
void    master_service_maybe_free(struct master_service *svc);

/* master_proc.c */
void    master_spawn(struct master_service *svc);
void    master_reap(int signo, void *ctx);
void    master_status_ready(int fd, int events, void *ctx);
void    master_wakeup_arm(struct master_service *svc, bool now);
void    master_kill_all(int signo);
void    master_unthrottle_later(struct master_service *svc);

#endif
