/* The rule matcher: every stored line against every alert rule, on the writer thread.
 *
 * Compiles a ruleset's patterns with PCRE2 (UTF, JIT). Per line it first applies the
 * cheap scope filters (source, app glob, procid glob), then a literal prefilter: one
 * pass of an Aho-Corasick automaton over the message finds which rules' required
 * literals occur, and only those rules (plus rules with no extractable literal) run
 * PCRE2. Match and depth limits and a capped JIT stack bound the cost of a
 * pathological pattern per line; a line that hits a limit counts as no match and is
 * counted per rule (sl_matcher_rule_stats). Not thread-safe: one matcher per thread. */
#ifndef SLUICE_MATCH_H
#define SLUICE_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/rule.h"
#include "sluice/str.h"

struct sl_matcher;

struct sl_match_line {
    int64_t source_id;
    struct sl_str app;    /* APP-NAME (NULL slice when absent) */
    struct sl_str procid; /* PROCID */
    struct sl_str msg;    /* MSG */
};

struct sl_match_hit {
    uint32_t rule;        /* index into the ruleset's rules */
    struct sl_str group;  /* SL_GROUP_PROCID: the procid; SL_GROUP_CAPTURE: the captured
                             text (empty when the group did not take part); otherwise
                             empty. Points into the line's buffers. SL_GROUP_SOURCE:
                             empty (the caller groups by source_id). */
};

/* Maps a source name of a rule's scope to its id (0: unknown; the rule then never
 * matches lines of that name). */
typedef int64_t (*sl_source_lookup)(void *arg, const char *name);

struct sl_matcher_limits {
    uint32_t match_limit;  /* pcre2_set_match_limit (default 100000) */
    uint32_t depth_limit;  /* pcre2_set_depth_limit (default 10000) */
    size_t jit_stack_max;  /* bytes (default 512 KiB) */
    /* Added: a zero field takes its default. no_prefilter (debug) runs PCRE2 for every
     * rule in scope, skipping the literal prefilter; the environment variable
     * SLUICE_MATCH_NO_PREFILTER=1, read by sl_matcher_new, does the same. Results are
     * identical either way; only the cost differs. */
    bool no_prefilter;
};

/* Compile every rule. limits may be NULL for the defaults. On a bad pattern returns
 * SL_EINVAL and appends "rule NAME: pattern: <PCRE2 message> at offset N" lines to
 * errors (if not NULL). Returns 0 and *out (caller frees). */
SL_MUSTCHECK int sl_matcher_new(const struct sl_ruleset *rs, sl_source_lookup lookup, void *arg,
                                const struct sl_matcher_limits *limits, struct sl_matcher **out,
                                struct sl_buf *errors);
void sl_matcher_free(struct sl_matcher *m);

/* Evaluate one line. Writes up to max hits (at most one per rule, in rule order) and
 * returns how many. Slices in hits stay valid while the line's buffers do. */
size_t sl_matcher_run(struct sl_matcher *m, const struct sl_match_line *line,
                      struct sl_match_hit *hits, size_t max);

/* The same for a crash (docs/alerts.md, "Crash rules"): only rules "on": "crashes" run on
 * it, and sl_matcher_run never runs them. */
size_t sl_matcher_run_crash(struct sl_matcher *m, const struct sl_match_line *line,
                            struct sl_match_hit *hits, size_t max);
struct sl_rule_stats {
    uint64_t evaluated;   /* lines in scope */
    uint64_t prefiltered; /* of those, skipped by the literal prefilter */
    uint64_t matched;
    uint64_t limit_hits;  /* PCRE2 match/depth/JIT-stack limit reached: counted, not matched */
};
/* Counters of rule i since the matcher was made. */
void sl_matcher_rule_stats(const struct sl_matcher *m, uint32_t i, struct sl_rule_stats *st);

/* Shell-style glob ('*', '?') used for app and procid scopes ("web.*"). */
/* Added: '*' is any run of bytes, '?' one byte, anything else itself; an absent (NULL)
 * s is the empty string. */
bool sl_glob_match(const char *glob, struct sl_str s);

/* Added. The prefilter's view of a pattern: literals of which every match must contain
 * at least one (one literal for most patterns; one per branch for an alternation such as
 * "OperationalError|InterfaceError"), ASCII-lowercased (the prefilter compares without
 * case). A conservative reading of the pattern text: whatever it does not understand
 * ((?x), \Q, backreferences, conditionals, ...) gives no literal. caseless: the rule's
 * "i" flag; caseless literals leave out 'k', 's' (PCRE2 folds U+212A / U+017F onto them)
 * and non-ASCII bytes. Literals are cut to SL_MATCH_LITERAL_MAX bytes; a literal shorter
 * than SL_MATCH_LITERAL_MIN, or more than SL_MATCH_LITERALS_MAX branches, gives none.
 * Writes the literals to out separated by '\n' and NUL-terminated (out may be NULL when
 * cap is 0) and returns how many there are (0: the rule always runs PCRE2). */
#define SL_MATCH_LITERAL_MIN 3
#define SL_MATCH_LITERAL_MAX 64
#define SL_MATCH_LITERALS_MAX 8
size_t sl_match_required_literals(const char *pattern, bool caseless, char *out, size_t cap);

/* Added (issue 12). The search query (docs/query.md) that shows the lines rule r matched,
 * for an alert's search link: "/pattern/" ("/pattern/i" for a caseless rule), with named
 * groups made plain ("(?<n>x)", "(?P<n>x)", "(?'n'x)" become "(x)") and every unescaped
 * '/' escaped, then " -/exclude/" when the rule has an exclude pattern. The query language
 * takes only the part of PCRE syntax PostgreSQL runs with the same meaning: a part it
 * refuses (inline flags, back references, \p{..}, ...) is left out, the exclude first;
 * without the pattern the query is "" and the link shows every line of the alert's
 * sources and window, which still holds the alert's lines. Writes the NUL-terminated
 * query to out (cap > 0 bytes; "" when it would not fit) and returns its length. */
size_t sl_match_search_query(const struct sl_rule *r, char *out, size_t cap);

#endif
