/* Unit tests for the maintenance thread's pacing (sl_maint_pause_us, drain/maint.c): the
 * pause after a retention statement is the floor, four times the statement, or its WAL at
 * SLUICE_RETENTION_WAL_RATE, whichever is longest; and the WAL a statement is charged
 * (sl_maint_step_wal) is at most what its removed rows can have written. */
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

static void test_step_wal(void **state)
{
    (void)state;
    /* a 10 000-row DELETE that wrote 2.9 MB: all of it (under 8.7 KB a row) */
    assert_int_equal(sl_maint_step_wal(2900000, 10000), 2900000);
    /* one that waited behind another session's 126 MB DELETE and then found its rows
     * gone: nothing was its own */
    assert_int_equal(sl_maint_step_wal(126000000, 0), 0);
    /* ... or found 3 of them left: at most a record and a page image each */
    assert_int_equal(sl_maint_step_wal(126000000, 3), 3 * (8192 + 512));
    /* nothing written, whatever was removed */
    assert_int_equal(sl_maint_step_wal(0, 10000), 0);
    /* no bound past the multiplication's range */
    assert_int_equal(sl_maint_step_wal(UINT64_MAX, 0x7fffffffffffffffLL), UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_floor_and_duty),
        cmocka_unit_test(test_wal_rate),
        cmocka_unit_test(test_step_wal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
