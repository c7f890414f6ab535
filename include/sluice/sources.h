/* The in-memory source table and read tokens the event loop authenticates against, so
 * the request path never waits on PostgreSQL. The maintenance thread replaces both at
 * once (after LISTEN sluice_sources tells it something changed, and every minute); the
 * event loop reads them. A read-write lock guards the swap. */
#ifndef SLUICE_SOURCES_H
#define SLUICE_SOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/db.h"
#include "sluice/err.h"

struct sl_sources;

SL_MUSTCHECK int sl_sources_new(struct sl_sources **out);
void sl_sources_free(struct sl_sources *s);

/* Replace the table and the read tokens in one swap (one generation); takes ownership
 * of rows (malloc'd array of n) and of toks (malloc'd array of ntoks, each with its
 * malloc'd source_ids; NULL when ntoks is 0). A token's source ids that name no row
 * are dropped here; the rest are sorted. */
void sl_sources_replace_all(struct sl_sources *s, struct sl_source_row *rows, size_t n,
                            struct sl_read_token_row *toks, size_t ntoks);
/* sl_sources_replace_all with no read tokens. */
void sl_sources_replace(struct sl_sources *s, struct sl_source_row *rows, size_t n);
/* How many times the table was replaced: 0 = never loaded (the listener then answers
 * 503, not 401: it cannot tell a wrong token from a table it has not seen yet).
 * Connections that cache a lookup re-check it when the generation moves. */
uint64_t sl_sources_generation(struct sl_sources *s);
/* A snapshot of the table and the read tokens on local disk (0600; token hashes only),
 * so a restart while PostgreSQL is down still authenticates. Written atomically
 * (rename). The read tokens follow the source rows, so a snapshot of an older version
 * (sources only) still loads, with no read tokens, and an older binary reads the
 * sources of a newer snapshot. */
SL_MUSTCHECK int sl_sources_save(struct sl_sources *s, const char *path);
SL_MUSTCHECK int sl_sources_load_file(struct sl_sources *s, const char *path);
size_t sl_sources_count(struct sl_sources *s);
size_t sl_sources_read_token_count(struct sl_sources *s);

/* HTTP Basic: the source id when name and token match, else 0. The token hash is
 * compared in constant time, and an unknown name costs the same as a wrong token. */
int64_t sl_sources_auth(struct sl_sources *s, const char *name, size_t nlen, const char *token,
                        size_t tlen);

/* The name of source id into out (cap bytes); false when unknown. */
bool sl_sources_name(struct sl_sources *s, int64_t id, char *out, size_t cap);
/* The id of a source name, 0 when unknown (the signature of sl_source_lookup). */
int64_t sl_sources_id(void *sources, const char *name);

/* syslog: the source a message HOSTNAME names, else 0: a registered Heroku drain
 * token ("d.<uuid>"), or "d.<ingest token>" of a source. *secret is set when the
 * hostname is the ingest token (a secret: it must not be stored). */
int64_t sl_sources_by_host(struct sl_sources *s, const char *host, size_t len, bool *secret);

/* Read API (docs/api.md). Called from the event loop: none of these blocks on I/O. */

/* A read token's scope. ids: malloc'd (caller frees, or sl_read_scope_free) unless all;
 * ascending; n may be 0 (every source of the token was removed: it reads nothing). */
struct sl_read_scope {
    bool all;
    int64_t *ids;
    size_t n;
};

/* 0 and *out when token is a known read token (the SHA-256 of the token is compared
 * with every read token's in constant time), SL_ENOTFOUND otherwise (also for ingest
 * tokens), SL_ENOMEM. */
SL_MUSTCHECK int sl_sources_read_auth(struct sl_sources *s, const char *token, size_t len,
                                      struct sl_read_scope *out);
/* Free scope->ids and empty the scope. Accepts NULL. */
void sl_read_scope_free(struct sl_read_scope *scope);
/* May a token with this scope read source id? */
bool sl_read_scope_has(const struct sl_read_scope *scope, int64_t id);

/* Every current source id, ascending. *ids malloc'd (caller frees; never NULL on
 * success, even when *n is 0). SL_ENOMEM. */
SL_MUSTCHECK int sl_sources_all_ids(struct sl_sources *s, int64_t **ids, size_t *n);
/* Ids of the sources whose name matches glob (fnmatch-style `*` and `?`, case-sensitive,
 * no escapes; a glob without them matches the equal name only); ascending. *ids
 * malloc'd as for sl_sources_all_ids. SL_ETOOBIG for a glob over 4096 bytes, SL_ENOMEM. */
SL_MUSTCHECK int sl_sources_match(struct sl_sources *s, const char *glob, size_t len, int64_t **ids,
                                  size_t *n);
/* Does name[0..nlen) match glob[0..glen) (the matching of sl_sources_match)? */
bool sl_sources_glob(const char *glob, size_t glen, const char *name, size_t nlen);

#endif
