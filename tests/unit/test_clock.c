/* Unit tests for drain/clock.c (include/sluice/clock.h): units, monotonicity, and the
 * normalised deadline for pthread_cond_timedwait. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <time.h>

#include "sluice/clock.h"

static void test_units(void **state)
{
    struct timespec ts;
    int64_t us, ms, ms2;

    (void)state;
    clock_gettime(CLOCK_REALTIME, &ts);
    us = sl_clock_real_us();
    /* microseconds since the epoch: within a second of time(2) */
    assert_true(us / 1000000 - (int64_t)ts.tv_sec <= 1 && us / 1000000 >= (int64_t)ts.tv_sec);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ms = sl_clock_mono_ms();
    assert_true(ms / 1000 - (int64_t)ts.tv_sec <= 1 && ms / 1000 >= (int64_t)ts.tv_sec);
    ms2 = sl_clock_mono_ms();
    assert_true(ms2 >= ms);
}

static void test_deadline(void **state)
{
    static const int cases[] = {-5, 0, 1, 999, 1000, 1500, 60000};
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct timespec before, d;
        int64_t got_ms, want_ms;

        clock_gettime(CLOCK_MONOTONIC, &before);
        sl_clock_mono_deadline(&d, cases[i]);
        assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
        got_ms = (int64_t)d.tv_sec * 1000 + d.tv_nsec / 1000000;
        want_ms = (int64_t)before.tv_sec * 1000 + before.tv_nsec / 1000000 +
                  (cases[i] > 0 ? cases[i] : 0);
        assert_true(got_ms >= want_ms && got_ms - want_ms <= 50);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
