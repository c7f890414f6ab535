/* A batch's rule matches grouped per (rule, group) (include/sluice/evalgroup.h): the
 * counts, receive times and sample lines rules/eval.c turns into alert state, and the
 * (rule id, group) order it locks the state rows in. Pure apart from the set's own
 * memory; PostgreSQL and the matcher stay in rules/eval.c. Writer thread. */
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/evalgroup.h"
#include "sluice/rule.h"
#include "sluice/utf8.h"

void sl_evalgroups_clear(struct sl_evalgroups *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->g[i].group);
        free(s->g[i].times);
    }
    s->n = 0;
}

void sl_evalgroups_free(struct sl_evalgroups *s)
{
    sl_evalgroups_clear(s);
    free(s->g);
    s->g = NULL;
    s->cap = 0;
}

struct sl_evalgroup *sl_evalgroups_find(struct sl_evalgroups *s, uint32_t rule, struct sl_str key)
{
    struct sl_evalgroup *a;

    for (size_t i = s->n; i-- > 0;) {
        a = &s->g[i];
        if (a->rule == rule && strlen(a->group) == key.len &&
            (key.len == 0 || memcmp(a->group, key.p, key.len) == 0))
            return a;
    }
    if (s->n >= SL_EVALGROUP_MAX) {
        s->dropped++;
        return NULL;
    }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        struct sl_evalgroup *ng = realloc(s->g, nc * sizeof(*ng));
        if (ng == NULL)
            return NULL;
        s->g = ng;
        s->cap = nc;
    }
    a = &s->g[s->n];
    memset(a, 0, sizeof(*a));
    a->rule = rule;
    a->group = malloc(key.len + 1);
    if (a->group == NULL)
        return NULL;
    if (key.len)
        memcpy(a->group, key.p, key.len);
    a->group[key.len] = '\0';
    s->n++;
    return a;
}

void sl_eval_sample_make(struct sl_eval_sample *smp, int64_t row_id, const struct sl_entry *e,
                         const struct sl_row_info *info)
{
    memset(smp, 0, sizeof(*smp));
    smp->set = true;
    smp->id = row_id;
    smp->received_us = e->received_us;
    smp->source_id = e->source_id;
    if (!info->parse_error) {
        smp->host = info->sl.hostname;
        smp->app = info->sl.app_name;
        smp->procid = info->sl.procid;
        smp->severity = info->sl.severity;
        smp->facility = info->sl.facility;
    } else {
        smp->severity = -1;
    }
    smp->msg = info->sl.msg;
}

void sl_evalgroup_add(struct sl_evalgroup *a, const struct sl_eval_sample *smp)
{
    a->n++;
    a->source_id = smp->source_id;
    if (a->ntimes < SL_RULE_MAX_COUNT) {
        if (a->ntimes == a->cap) {
            size_t nc = a->cap ? a->cap * 2 : 8;
            int64_t *nt = realloc(a->times, nc * sizeof(*nt));
            if (nt == NULL)
                return; /* as before the split: the sample is not kept either */
            a->times = nt;
            a->cap = nc;
        }
        a->times[a->ntimes++] = smp->received_us;
    }
    if (a->n <= SL_EVALGROUP_SAMPLES)
        a->first[a->n - 1] = *smp;
    else
        a->last[a->nlast++ % SL_EVALGROUP_SAMPLES] = *smp;
}

size_t sl_evalgroup_nlast(const struct sl_evalgroup *a)
{
    return a->nlast < SL_EVALGROUP_SAMPLES ? a->nlast : SL_EVALGROUP_SAMPLES;
}

const struct sl_eval_sample *sl_evalgroup_last(const struct sl_evalgroup *a, size_t i)
{
    size_t k = a->nlast > SL_EVALGROUP_SAMPLES ? (a->nlast + i) % SL_EVALGROUP_SAMPLES : i;

    return &a->last[k];
}

static int cmp_group(const void *x, const void *y, void *ids)
{
    const struct sl_evalgroup *a = x, *b = y;
    const int *rid = ids;

    if (rid[a->rule] != rid[b->rule])
        return rid[a->rule] < rid[b->rule] ? -1 : 1;
    return strcmp(a->group, b->group);
}

void sl_evalgroups_sort(struct sl_evalgroups *s, const int *rule_ids)
{
    union {
        const int *c;
        void *v;
    } ids = {rule_ids}; /* qsort_r's argument is not const; cmp_group only reads */

    for (size_t i = 0; i < s->n; i++) {
        struct sl_evalgroup *a = &s->g[i];
        size_t len = strlen(a->group);
        struct sl_buf b;
        char *g;

        if (sl_utf8_clean(a->group, len))
            continue;
        sl_buf_init(&b, (size_t)1 << 20);
        if (sl_utf8_sanitize(a->group, len > SL_EVALGROUP_KEY_MAX ? SL_EVALGROUP_KEY_MAX : len, &b))
            sl_buf_reset(&b);
        g = sl_buf_addc(&b, '\0') ? strdup("") : strdup(b.p);
        sl_buf_free(&b);
        if (g) {
            free(a->group);
            a->group = g;
        }
    }
    qsort_r(s->g, s->n, sizeof(*s->g), cmp_group, ids.v);
}
