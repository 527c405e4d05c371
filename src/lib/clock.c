/*
 * clock.c - wall and monotonic clocks; see clock.h.
 */
#include "clock.h"

static time_t clock_offset;

time_t
clock_now(void)
{
    return time(NULL) + clock_offset;
}

int64_t
clock_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return ((int64_t) ts.tv_sec + clock_offset) * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
clock_set_offset(time_t seconds)
{
    clock_offset = seconds;
}
