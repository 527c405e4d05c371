/*
 * clock.h - the one source of time for Postern.
 *
 * Every module asks clock_now()/clock_now_ms() instead of calling time()
 * directly, so tests can move time with clock_set_offset() and so the
 * monotonic clock is used for timeouts.
 */
#ifndef POSTERN_CLOCK_H
#define POSTERN_CLOCK_H

#include <stdint.h>
#include <time.h>

time_t   clock_now(void);                 /* wall clock, seconds */
int64_t  clock_now_ms(void);              /* wall clock, milliseconds */
int64_t  clock_mono_ms(void);             /* monotonic, milliseconds (timeouts) */
void     clock_set_offset(time_t seconds);/* tests: shift the wall clock */

#endif
