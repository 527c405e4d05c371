/*
 * test_events.c - unit tests for the event loop (events.c).
 */
#include <signal.h>
#include <unistd.h>

#include "clock.h"
#include "events.h"
#include "unit.h"

static int fired[8];

static void
timer_cb(void *ctx)
{
    fired[(long) ctx]++;
}

TEST(timers_fire_in_time_and_cancel)
{
    event_loop_t *loop = event_loop_new();
    int64_t start = clock_mono_ms();

    memset(fired, 0, sizeof(fired));
    event_timer_add(loop, 50, timer_cb, (void *) 1L);
    uint64_t id = event_timer_add(loop, 60, timer_cb, (void *) 2L);

    event_timer_add(loop, 0, timer_cb, (void *) 3L);
    event_timer_cancel(loop, id);
    while (fired[1] == 0 && clock_mono_ms() - start < 2000)
        event_loop_run_once(loop, 1000);
    CHECK_INTEQ(fired[1], 1);
    CHECK_INTEQ(fired[2], 0);
    CHECK_INTEQ(fired[3], 1);
    CHECK(clock_mono_ms() - start >= 50);
    event_loop_free(loop);
}

static int read_events;

static void
fd_cb(int fd, int events, void *ctx)
{
    char    buf[16];

    read_events++;
    if (read(fd, buf, sizeof(buf)) <= 0)
        event_fd_del(ctx, fd);
}

TEST(fd_readiness_and_removal)
{
    event_loop_t *loop = event_loop_new();
    int     p[2];

    CHECK(pipe(p) == 0);
    event_fd_add(loop, p[0], EVENT_READ, fd_cb, loop);
    CHECK(event_fd_watched(loop, p[0]));
    event_loop_run_once(loop, 10);
    CHECK_INTEQ(read_events, 0);
    CHECK(write(p[1], "x", 1) == 1);
    event_loop_run_once(loop, 1000);
    CHECK_INTEQ(read_events, 1);
    close(p[1]);                    /* EOF: the callback removes the fd */
    event_loop_run_once(loop, 1000);
    CHECK_INTEQ(read_events, 2);
    CHECK(!event_fd_watched(loop, p[0]));
    close(p[0]);
    event_loop_free(loop);
}

static int other_events;

static void
other_cb(int fd, int events, void *ctx)
{
    char    buf[16];

    other_events++;
    (void) read(fd, buf, sizeof(buf));
}

/* Adding a watched fd again: the new callback (and events) take effect. */
TEST(fd_callback_and_events_changed)
{
    event_loop_t *loop = event_loop_new();
    int     p[2];

    CHECK(pipe(p) == 0);
    read_events = other_events = 0;
    event_fd_add(loop, p[0], EVENT_READ, fd_cb, loop);
    event_fd_add(loop, p[0], EVENT_READ, other_cb, NULL);      /* same events */
    CHECK(write(p[1], "x", 1) == 1);
    event_loop_run_once(loop, 1000);
    CHECK_INTEQ(read_events, 0);
    CHECK_INTEQ(other_events, 1);
    /* Writable instead of readable: a pipe's write end is always writable. */
    event_fd_add(loop, p[1], EVENT_WRITE, other_cb, NULL);
    event_fd_add(loop, p[1], EVENT_READ, other_cb, NULL);      /* never readable */
    other_events = 0;
    event_loop_run_once(loop, 50);
    CHECK_INTEQ(other_events, 0);
    event_fd_del(loop, p[0]);
    event_fd_del(loop, p[1]);
    close(p[0]);
    close(p[1]);
    event_loop_free(loop);
}

static int got_signal;

static void
sig_cb(int signo, void *ctx)
{
    got_signal = signo;
}

TEST(signals_arrive_in_the_loop)
{
    event_loop_t *loop = event_loop_new();

    event_signal(loop, SIGUSR1, sig_cb, NULL);
    CHECK(kill(getpid(), SIGUSR1) == 0);
    for (int i = 0; i < 10 && got_signal == 0; i++)
        event_loop_run_once(loop, 100);
    CHECK_INTEQ(got_signal, SIGUSR1);
    signal(SIGUSR1, SIG_DFL);
    event_loop_free(loop);
}

/* The order callbacks ran in: 's' for the signal, 'f' for the descriptor. */
static char order[8];
static int norder;

static void
order_sig_cb(int signo, void *ctx)
{
    if (norder < (int) sizeof(order) - 1)
        order[norder++] = 's';
}

static void
order_fd_cb(int fd, int events, void *ctx)
{
    char    c;

    if (read(fd, &c, 1) == 1 && norder < (int) sizeof(order) - 1)
        order[norder++] = 'f';
}

/* A signal that comes with other events runs before them (a SIGTERM first). */
TEST(signal_runs_before_the_other_events_of_its_batch)
{
    event_loop_t *loop = event_loop_new();
    int     p[2];

    CHECK(pipe(p) == 0);
    event_signal(loop, SIGUSR2, order_sig_cb, NULL);
    event_fd_add(loop, p[0], EVENT_READ, order_fd_cb, NULL);
    /* The descriptor is ready first, the signal after it: both in one batch. */
    CHECK(write(p[1], "x", 1) == 1);
    CHECK(kill(getpid(), SIGUSR2) == 0);
    event_loop_run_once(loop, 100);
    CHECK_STREQ(order, "sf");
    signal(SIGUSR2, SIG_DFL);
    event_fd_del(loop, p[0]);
    close(p[0]);
    close(p[1]);
    event_loop_free(loop);
}
