/*
 * events.h - a small event loop: descriptors, timers and signals.
 *
 * Used by the programs that must watch many things at once (master, qmgr,
 * postscreen, anvil, ...). Built on epoll. Callbacks run one at a time from
 * event_loop_run_once(); a callback may add or remove any descriptor or timer,
 * including its own. Signals are delivered through a self-pipe, so a signal
 * callback runs in normal context, never inside a signal handler.
 *
 * Ownership: the loop never closes descriptors it watches.
 */
#ifndef POSTERN_EVENTS_H
#define POSTERN_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#define EVENT_READ   0x1
#define EVENT_WRITE  0x2
#define EVENT_ERROR  0x4    /* reported with READ/WRITE on hang-up or error */

typedef struct event_loop event_loop_t;
typedef void (*event_fd_fn)(int fd, int events, void *ctx);
typedef void (*event_timer_fn)(void *ctx);
typedef void (*event_signal_fn)(int signo, void *ctx);

event_loop_t *event_loop_new(void);
void    event_loop_free(event_loop_t *loop);

/* Watch fd for "events"; replaces an earlier registration of the same fd. */
void    event_fd_add(event_loop_t *loop, int fd, int events, event_fd_fn fn, void *ctx);
void    event_fd_del(event_loop_t *loop, int fd);
bool    event_fd_watched(const event_loop_t *loop, int fd);

/* One-shot timer after delay_ms; returns an id for event_timer_cancel (never 0). */
uint64_t event_timer_add(event_loop_t *loop, int64_t delay_ms, event_timer_fn fn, void *ctx);
void    event_timer_cancel(event_loop_t *loop, uint64_t id);

/* Route a signal to a callback (installs a handler; SA_RESTART). */
void    event_signal(event_loop_t *loop, int signo, event_signal_fn fn, void *ctx);

/* Wait at most max_wait_ms (-1: until something happens), run what is due. */
void    event_loop_run_once(event_loop_t *loop, int max_wait_ms);

#endif
