/* The process clocks: wall time in microseconds since the Unix epoch (row times, alert
 * windows, partitions) and monotonic milliseconds (deadlines, durations). Any thread. */
#ifndef SLUICE_CLOCK_H
#define SLUICE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Microseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t sl_clock_real_us(void);
/* Milliseconds on CLOCK_MONOTONIC. */
int64_t sl_clock_mono_ms(void);
/* *ts = CLOCK_MONOTONIC now + timeout_ms (>= 0), normalised: the absolute deadline
 * pthread_cond_timedwait wants on a condition variable set to CLOCK_MONOTONIC. */
void sl_clock_mono_deadline(struct timespec *ts, int timeout_ms);

#endif
