/*
 * events.c - epoll-based event loop with timers and self-pipe signals.
 *
 * Descriptor registrations live in a table indexed by fd. Timers are kept in
 * a small unsorted array and scanned for the earliest deadline: the programs
 * that use this loop keep few timers, so simplicity wins over a heap here.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "clock.h"
#include "events.h"
#include "log.h"
#include "mem.h"

struct fd_slot {
    event_fd_fn fn;
    void   *ctx;
    int     events;
};

struct timer {
    uint64_t id;
    int64_t when;       /* monotonic ms */
    event_timer_fn fn;
    void   *ctx;
};

struct sig_slot {
    event_signal_fn fn;
    void   *ctx;
};

struct event_loop {
    int     epfd;
    struct fd_slot *fds;
    size_t  nfds_cap;
    struct timer *timers;
    size_t  ntimers, timers_cap;
    uint64_t next_timer_id;
    struct sig_slot sigs[65];
};

static int sig_pipe[2] = {-1, -1};

static void
sig_handler(int signo)
{
    int     saved = errno;
    unsigned char b = (unsigned char) signo;

    if (write(sig_pipe[1], &b, 1) < 0) {
        /* pipe full: the signal is already pending in it */
    }
    errno = saved;
}

static void
sig_pipe_ready(int fd, int events, void *ctx)
{
    event_loop_t *loop = ctx;
    unsigned char buf[64];
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            int     s = buf[i];

            if (s < 65 && loop->sigs[s].fn)
                loop->sigs[s].fn(s, loop->sigs[s].ctx);
        }
    }
}

event_loop_t *
event_loop_new(void)
{
    event_loop_t *loop = mem_zalloc(sizeof(*loop));

    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        log_fatal_errno("epoll_create1");
    loop->next_timer_id = 1;
    return loop;
}

void
event_loop_free(event_loop_t *loop)
{
    if (loop == NULL)
        return;
    close(loop->epfd);
    mem_free(loop->fds);
    mem_free(loop->timers);
    mem_free(loop);
}

void
event_fd_add(event_loop_t *loop, int fd, int events, event_fd_fn fn, void *ctx)
{
    struct epoll_event ev = {0};
    bool    existed;

    if (fd < 0)
        log_panic("event_fd_add: bad fd %d", fd);
    loop->fds = mem_grow_array(loop->fds, &loop->nfds_cap, (size_t) fd + 1, sizeof(*loop->fds));
    existed = loop->fds[fd].fn != NULL;
    ev.events = ((events & EVENT_READ) ? EPOLLIN : 0) | ((events & EVENT_WRITE) ? EPOLLOUT : 0);
    ev.data.fd = fd;
    /*
     * Only the callback changes when the events stay: no system call. (A
     * caller must event_fd_del() a descriptor before it closes it, so a slot
     * in use always means a registration the kernel still has.)
     */
    if ((!existed || loop->fds[fd].events != events)
        && epoll_ctl(loop->epfd, existed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0)
        log_panic("epoll_ctl(fd %d): %s", fd, strerror(errno));
    loop->fds[fd] = (struct fd_slot) {.fn = fn, .ctx = ctx, .events = events};
}

void
event_fd_del(event_loop_t *loop, int fd)
{
    if (fd < 0 || (size_t) fd >= loop->nfds_cap || loop->fds[fd].fn == NULL)
        return;
    /* The fd may already be closed; epoll forgets closed fds by itself. */
    (void) epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    loop->fds[fd] = (struct fd_slot) {0};
}

bool
event_fd_watched(const event_loop_t *loop, int fd)
{
    return fd >= 0 && (size_t) fd < loop->nfds_cap && loop->fds[fd].fn != NULL;
}

uint64_t
event_timer_add(event_loop_t *loop, int64_t delay_ms, event_timer_fn fn, void *ctx)
{
    loop->timers = mem_grow_array(loop->timers, &loop->timers_cap, loop->ntimers + 1,
                                  sizeof(*loop->timers));
    loop->timers[loop->ntimers++] = (struct timer) {
        .id = loop->next_timer_id++,
        .when = clock_mono_ms() + (delay_ms < 0 ? 0 : delay_ms),
        .fn = fn,
        .ctx = ctx,
    };
    return loop->timers[loop->ntimers - 1].id;
}

void
event_timer_cancel(event_loop_t *loop, uint64_t id)
{
    for (size_t i = 0; i < loop->ntimers; i++) {
        if (loop->timers[i].id == id) {
            loop->timers[i] = loop->timers[--loop->ntimers];
            return;
        }
    }
}

void
event_signal(event_loop_t *loop, int signo, event_signal_fn fn, void *ctx)
{
    struct sigaction sa;

    if (signo <= 0 || signo >= 65)
        log_panic("event_signal: bad signal %d", signo);
    if (sig_pipe[0] < 0) {
        if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
            log_fatal_errno("pipe2");
    }
    if (!event_fd_watched(loop, sig_pipe[0]))
        event_fd_add(loop, sig_pipe[0], EVENT_READ, sig_pipe_ready, loop);
    loop->sigs[signo] = (struct sig_slot) {.fn = fn, .ctx = ctx};
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = sig_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(signo, &sa, NULL) != 0)
        log_fatal_errno("sigaction(%d)", signo);
}

/* Run every timer that is due; a timer callback may add or cancel timers. */
static void
run_timers(event_loop_t *loop)
{
    int64_t now = clock_mono_ms();

    for (size_t i = 0; i < loop->ntimers;) {
        if (loop->timers[i].when <= now) {
            struct timer t = loop->timers[i];

            loop->timers[i] = loop->timers[--loop->ntimers];
            t.fn(t.ctx);
            i = 0;                  /* the array may have changed */
            continue;
        }
        i++;
    }
}

void
event_loop_run_once(event_loop_t *loop, int max_wait_ms)
{
    struct epoll_event evs[64];
    int64_t wait = max_wait_ms;
    int     n;

    if (loop->ntimers > 0) {
        int64_t now = clock_mono_ms();
        int64_t first = loop->timers[0].when;

        for (size_t i = 1; i < loop->ntimers; i++)
            if (loop->timers[i].when < first)
                first = loop->timers[i].when;
        first = first > now ? first - now : 0;
        if (wait < 0 || first < wait)
            wait = first;
    }
    n = epoll_wait(loop->epfd, evs, 64, wait > 86400000 ? 86400000 : (int) wait);
    if (n < 0 && errno != EINTR)
        log_fatal_errno("epoll_wait");
    /*
     * Signals first: a SIGTERM that came with other events is acted on
     * before them (qmgr must not take its agents' exits, under the same
     * stop, for failed deliveries).
     */
    for (int i = 0; i < n && sig_pipe[0] >= 0; i++) {
        if (evs[i].data.fd == sig_pipe[0] && event_fd_watched(loop, sig_pipe[0])) {
            loop->fds[sig_pipe[0]].fn(sig_pipe[0], EVENT_READ, loop->fds[sig_pipe[0]].ctx);
            evs[i].data.fd = -1;    /* done: skipped below */
            break;
        }
    }
    for (int i = 0; i < n; i++) {
        int     fd = evs[i].data.fd;
        int     what = 0;

        /* Done above, or a previous callback in this batch removed this fd. */
        if (fd < 0 || (size_t) fd >= loop->nfds_cap || loop->fds[fd].fn == NULL)
            continue;
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            what |= EVENT_READ;
        if (evs[i].events & EPOLLOUT)
            what |= EVENT_WRITE;
        if (evs[i].events & (EPOLLHUP | EPOLLERR))
            what |= EVENT_ERROR;
        loop->fds[fd].fn(fd, what, loop->fds[fd].ctx);
    }
    run_timers(loop);
}
