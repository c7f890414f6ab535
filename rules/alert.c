/* Alert windows and conditions (include/sluice/alert.h). Pure: no I/O, no clock; the
 * caller passes the time and persists the state. Runs on the writer thread (matches)
 * and the maintenance thread (ticks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/alert.h"
#include "sluice/str.h"

#define US 1000000LL

void sl_alert_state_free(struct sl_alert_state *st)
{
    if (st == NULL)
        return;
    free(st->times);
    st->times = NULL;
    st->ntimes = 0;
}

void sl_alert_make_id(int64_t rule_id, const char *group, int64_t fired_us,
                      char out[SL_ALERT_ID_MAX])
{
    /* FNV-1a of the group keeps the id short and free of the group's characters */
    uint64_t h = sl_fnv1a64(group, group ? strlen(group) : 0);
    snprintf(out, SL_ALERT_ID_MAX, "al_%lld_%016llx_%llx", (long long)rule_id,
             (unsigned long long)h, (unsigned long long)fired_us);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Keep the last `keep` match times, ascending. */
static int merge_times(struct sl_alert_state *st, const int64_t *times, size_t n, uint32_t keep)
{
    size_t total = st->ntimes + n, from;
    int64_t *all;

    if (keep == 0)
        return 0;
    all = malloc(total * sizeof(*all));
    if (all == NULL)
        return SL_ENOMEM;
    if (st->ntimes)
        memcpy(all, st->times, st->ntimes * sizeof(*all));
    memcpy(all + st->ntimes, times, n * sizeof(*all));
    qsort(all, total, sizeof(*all), cmp_i64);
    from = total > keep ? total - keep : 0;
    memmove(all, all + from, (total - from) * sizeof(*all));
    free(st->times);
    st->times = all;
    st->ntimes = (uint32_t)(total - from);
    return 0;
}

static bool cooled(const struct sl_rule *r, const struct sl_alert_state *st, int64_t now_us)
{
    return st->fired_us == 0 || now_us - st->fired_us >= (int64_t)r->cooldown * US;
}

static enum sl_alert_event fire(int64_t rule_id, const char *group, struct sl_alert_state *st,
                                uint64_t count, int64_t now_us)
{
    st->firing = true;
    st->fired_us = now_us;
    st->count = count;
    sl_alert_make_id(rule_id, group, now_us, st->alert_id);
    return SL_ALERT_FIRE;
}

enum sl_alert_event sl_alert_on_matches(const struct sl_rule *r, int64_t rule_id,
                                        const char *group, struct sl_alert_state *st,
                                        const int64_t *times, size_t n, int64_t now_us)
{
    int64_t newest = 0;

    if (n == 0)
        return SL_ALERT_NONE;
    for (size_t i = 0; i < n; i++)
        if (times[i] > newest)
            newest = times[i];
    if (newest > st->last_match_us)
        st->last_match_us = newest;

    switch (r->condition) {
    case SL_COND_MATCH:
        if (st->firing) {
            st->count += n;
            return SL_ALERT_NONE;
        }
        if (!cooled(r, st, now_us))
            return SL_ALERT_NONE;
        return fire(rule_id, group, st, n, now_us);

    case SL_COND_THRESHOLD:
        if (merge_times(st, times, n, r->count))
            return SL_ALERT_NONE;
        if (st->firing) {
            st->count += n;
            return SL_ALERT_NONE;
        }
        if (st->ntimes >= r->count && r->count > 0 &&
            st->times[st->ntimes - 1] - st->times[st->ntimes - r->count] <=
                (int64_t)r->window * US &&
            cooled(r, st, now_us)) {
            /* everything that counted goes into this alert: the window starts over */
            uint64_t c = st->ntimes > n ? st->ntimes : n;
            st->ntimes = 0;
            return fire(rule_id, group, st, c, now_us);
        }
        return SL_ALERT_NONE;

    case SL_COND_ABSENCE:
        if (st->firing) {
            st->firing = false;
            st->resolved_us = now_us;
            return SL_ALERT_RESOLVE;
        }
        return SL_ALERT_NONE;
    }
    return SL_ALERT_NONE;
}

enum sl_alert_event sl_alert_on_tick(const struct sl_rule *r, int64_t rule_id, const char *group,
                                     struct sl_alert_state *st, int64_t now_us)
{
    if (r->condition == SL_COND_ABSENCE) {
        if (!st->firing && st->last_match_us > 0 &&
            now_us - st->last_match_us >= (int64_t)r->window * US && cooled(r, st, now_us))
            return fire(rule_id, group, st, 0, now_us);
        return SL_ALERT_NONE;
    }
    if (st->firing && r->resolve_after > 0 &&
        now_us - st->last_match_us >= (int64_t)r->resolve_after * US) {
        st->firing = false;
        st->resolved_us = now_us;
        return SL_ALERT_RESOLVE;
    }
    return SL_ALERT_NONE;
}
