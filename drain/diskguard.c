/* The disk guard's decisions (include/sluice/diskguard.h, docs/retention.md "Disk
 * guard"): the used figure, the state and its hysteresis, the bytes and rows to free,
 * the order of eviction. Pure: values in, values out; drain/evict.c does the I/O. */
#include <math.h>
#include <stdio.h>

#include "sluice/diskguard.h"

int sl_diskguard_limits_check(const struct sl_diskguard_limits *l, char *why, size_t whylen)
{
    const char *bad = NULL;

    if (l->hysteresis_pct < 0)
        bad = "SLUICE_DISK_HYSTERESIS_PCT must not be negative";
    else if (l->evict_pct - l->hysteresis_pct <= 0)
        bad = "SLUICE_DISK_EVICT_PCT must be above SLUICE_DISK_HYSTERESIS_PCT";
    else if (l->evict_pct >= l->refuse_pct)
        bad = "SLUICE_DISK_EVICT_PCT must be below SLUICE_DISK_REFUSE_PCT";
    else if (l->refuse_pct > 100)
        bad = "SLUICE_DISK_REFUSE_PCT must be at most 100";
    if (bad == NULL)
        return 0;
    snprintf(why, whylen, "%s", bad);
    return SL_EINVAL;
}

double sl_diskguard_used_pct(const struct sl_diskguard_figures *f, enum sl_diskguard_figure *which)
{
    double best = -1;
    enum sl_diskguard_figure w = SL_DISK_FIGURE_NONE;

    if (f->budget_bytes > 0 && f->db_bytes >= 0) {
        best = 100.0 * (double)f->db_bytes / (double)f->budget_bytes;
        w = SL_DISK_FIGURE_BUDGET;
    }
    if (f->fs_used_bytes >= 0 && f->fs_avail_bytes >= 0 &&
        f->fs_used_bytes + f->fs_avail_bytes > 0) {
        double p =
            100.0 * (double)f->fs_used_bytes / (double)(f->fs_used_bytes + f->fs_avail_bytes);
        if (p > best) {
            best = p;
            w = SL_DISK_FIGURE_FILESYSTEM;
        }
    }
    if (which)
        *which = w;
    return best;
}

enum sl_diskguard_state sl_diskguard_next(enum sl_diskguard_state prev, double used_pct,
                                          const struct sl_diskguard_limits *l)
{
    if (used_pct < 0)
        return SL_DISK_OK;
    if (used_pct >= l->refuse_pct ||
        (prev == SL_DISK_REFUSING && used_pct >= l->refuse_pct - l->hysteresis_pct))
        return SL_DISK_REFUSING;
    if (used_pct >= l->evict_pct ||
        (prev != SL_DISK_OK && used_pct >= l->evict_pct - l->hysteresis_pct))
        return SL_DISK_EVICTING;
    return SL_DISK_OK;
}

int64_t sl_diskguard_need_bytes(const struct sl_diskguard_figures *f,
                                const struct sl_diskguard_limits *l)
{
    double target = (double)(l->evict_pct - l->hysteresis_pct) / 100.0;
    double need = 0;

    if (f->budget_bytes > 0 && f->db_bytes >= 0) {
        double n = (double)f->db_bytes - target * (double)f->budget_bytes;
        if (n > need)
            need = n;
    }
    if (f->fs_used_bytes >= 0 && f->fs_avail_bytes >= 0) {
        double n =
            (double)f->fs_used_bytes - target * (double)(f->fs_used_bytes + f->fs_avail_bytes);
        if (n > need)
            need = n;
    }
    return need >= 9.2e18 ? INT64_MAX : (int64_t)ceil(need);
}

int64_t sl_diskguard_rows_needed(int64_t need_bytes, int64_t part_bytes, int64_t part_rows,
                                 int64_t batch)
{
    double rows;

    if (need_bytes <= 0)
        return 0;
    if (part_bytes <= 0 || part_rows <= 0)
        return INT64_MAX;
    rows = ceil((double)need_bytes * (double)part_rows / (double)part_bytes);
    if (batch > 1)
        rows = ceil(rows / (double)batch) * (double)batch;
    return rows >= 9.2e18 ? INT64_MAX : (int64_t)rows;
}

size_t sl_diskguard_pick(const int64_t *oldest, size_t n, int64_t *cap)
{
    size_t best = n;

    *cap = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        if (oldest[i] == INT64_MAX)
            continue;
        if (best == n || oldest[i] < oldest[best]) {
            if (best != n)
                *cap = oldest[best];
            best = i;
        } else if (oldest[i] < *cap)
            *cap = oldest[i];
    }
    return best;
}

const char *sl_diskguard_state_name(enum sl_diskguard_state s)
{
    switch (s) {
    case SL_DISK_OK:
        return "ok";
    case SL_DISK_EVICTING:
        return "evicting";
    case SL_DISK_REFUSING:
        return "refusing";
    }
    return "ok";
}

const char *sl_diskguard_figure_name(enum sl_diskguard_figure w)
{
    switch (w) {
    case SL_DISK_FIGURE_BUDGET:
        return "budget";
    case SL_DISK_FIGURE_FILESYSTEM:
        return "filesystem";
    case SL_DISK_FIGURE_NONE:
        break;
    }
    return "none";
}
