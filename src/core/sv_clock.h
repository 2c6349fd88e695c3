/* The one clock: every duration, deadline and timestamp the server takes
 * comes from here, so they can be compared with each other. */
#ifndef SV_CLOCK_H
#define SV_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC: for durations and deadlines. */
int64_t sv_clock_mono_ms(void);

/* Microseconds of CLOCK_MONOTONIC (one clock for every process of the
 * host, so processes can compare them: the rate limiter does). */
int64_t sv_clock_mono_us(void);

/* Milliseconds since the epoch (CLOCK_REALTIME): for what people read. */
int64_t sv_clock_wall_ms(void);

#endif
