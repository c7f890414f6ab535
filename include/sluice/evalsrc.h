/* The source names of a rule set resolved to ids, and whether the compiled matcher
 * must be built again because one of them now resolves to another id (rules/evalsrc.c,
 * issue 12). Pure apart from the array it returns; the lookup is the caller's (the
 * in-memory source table). Writer thread (sl_eval_load, sl_eval_begin). */
#ifndef SLUICE_EVALSRC_H
#define SLUICE_EVALSRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/err.h"
#include "sluice/match.h"
#include "sluice/ruleset.h"

/* The ids of every source name the rules of rs give, rule by rule in order, as the
 * matcher looks them up (0: unknown name). Returns 0 with *out (caller frees; NULL and
 * *n 0 when no rule names a source), or SL_ENOMEM. */
SL_MUSTCHECK int sl_evalsrc_lookup(const struct sl_ruleset *rs, sl_source_lookup lookup, void *arg,
                                   int64_t **out, size_t *n);

/* Whether the source table should be looked at again: a matcher is compiled and the
 * table's generation moved since its names were resolved. */
bool sl_evalsrc_stale(bool compiled, uint64_t resolved_gen, uint64_t gen);

/* Whether ids resolved now differ from those the matcher was compiled with (then it
 * must be compiled again; otherwise only the generation moves: the periodic reload, or
 * sources the rules do not name). */
bool sl_evalsrc_changed(const int64_t *was, size_t nwas, const int64_t *now, size_t nnow);

#endif
