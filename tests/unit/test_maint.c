/* Unit tests for the maintenance thread's pacing (sl_maint_pause_us, drain/maint.c): the
 * pause after a retention statement is the floor, four times the statement, or its WAL at
 * SLUICE_RETENTION_WAL_RATE, whichever is longest. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sluice/maint.h"

static void test_floor_and_duty(void **state)
{
    (void)state;
    /* a quick statement waits the floor */
    assert_int_equal(sl_maint_pause_us(10000, 1000, 0, 0), 1000000);
    /* a slow one four times its own time */
    assert_int_equal(sl_maint_pause_us(400000, 1000, 0, 0), 1600000);
    /* no floor: the duty alone */
    assert_int_equal(sl_maint_pause_us(5000, 0, 0, 0), 20000);
    assert_int_equal(sl_maint_pause_us(0, 0, 0, 0), 0);
}

static void test_wal_rate(void **state)
{
    (void)state;
    /* 3 MB at 1 MiB/s: three seconds, past the floor and the duty */
    assert_int_equal(sl_maint_pause_us(11000, 1000, 3u << 20, 1 << 20), 3000000);
    /* a little WAL: the floor stays */
    assert_int_equal(sl_maint_pause_us(11000, 1000, 64 << 10, 1 << 20), 1000000);
    /* a slow statement that wrote little: the duty stays */
    assert_int_equal(sl_maint_pause_us(2000000, 0, 1 << 20, 1 << 20), 8000000);
    /* no rate: WAL does not count, however much */
    assert_int_equal(sl_maint_pause_us(11000, 1000, 1ull << 40, 0), 1000000);
    assert_int_equal(sl_maint_pause_us(11000, 1000, 1ull << 40, -5), 1000000);
    /* an absurd reading waits an hour, not forever */
    assert_int_equal(sl_maint_pause_us(11000, 1000, UINT64_MAX, 1), 3600000000LL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_floor_and_duty),
        cmocka_unit_test(test_wal_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
