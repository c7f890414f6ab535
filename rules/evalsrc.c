/* Source names of alert rules resolved to ids, and the "must recompile" decision
 * (include/sluice/evalsrc.h, issue 12). Pure apart from the array it returns; the
 * lookup function reads the in-memory source table. Writer thread (rules/eval.c). */
#include <stdlib.h>
#include <string.h>

#include "sluice/evalsrc.h"

int sl_evalsrc_lookup(const struct sl_ruleset *rs, sl_source_lookup lookup, void *arg,
                      int64_t **out, size_t *n)
{
    size_t total = 0, k = 0;

    *out = NULL;
    *n = 0;
    for (size_t i = 0; i < rs->nrules; i++)
        total += rs->rules[i].nsources;
    if (total == 0)
        return 0;
    if ((*out = calloc(total, sizeof(**out))) == NULL)
        return SL_ENOMEM;
    for (size_t i = 0; i < rs->nrules; i++)
        for (size_t j = 0; j < rs->rules[i].nsources; j++, k++)
            (*out)[k] = rs->rules[i].sources[j] ? lookup(arg, rs->rules[i].sources[j]) : 0;
    *n = total;
    return 0;
}

bool sl_evalsrc_stale(bool compiled, uint64_t resolved_gen, uint64_t gen)
{
    return compiled && gen != resolved_gen;
}

bool sl_evalsrc_changed(const int64_t *was, size_t nwas, const int64_t *now, size_t nnow)
{
    return !(nnow == nwas && (nnow == 0 || memcmp(now, was, nnow * sizeof(*now)) == 0));
}
