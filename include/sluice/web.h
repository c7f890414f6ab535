/* The web viewer's files (drain/web.c, docs/viewer.md): drain/web/ is embedded in the
 * binary at build time (the Makefile writes $(BUILD)/gen/web_assets.c with each file's
 * bytes and the first 80 bits of its SHA-256, the ETag), so the page needs no files on
 * disk and nothing from another origin. Pure: a table look-up and constant headers. */
#ifndef SLUICE_WEB_H
#define SLUICE_WEB_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/str.h"

/* One embedded file. The generated table ends with a row whose path is NULL. */
struct sl_web_file {
    const char *path;        /* "/viewer.js" */
    const char *etag;        /* 20 hex digits, without quotes */
    const unsigned char *p;  /* the bytes (NUL-terminated, not counted in len) */
    size_t len;
};
extern const struct sl_web_file sl_web_files[];

/* The file served at path ("/" is "/index.html"), or NULL. */
const struct sl_web_file *sl_web_find(struct sl_str path);
/* Is path one of the viewer's files? (the route table's match) */
bool sl_web_path(struct sl_str path);
/* Its Content-Type, from the name's extension. */
const char *sl_web_ctype(const struct sl_web_file *f);

/* The headers every viewer file is sent with (each line ends in CRLF): a strict
 * Content-Security-Policy (only this origin's script, style, images and fetches; no
 * inline script or style; no framing), nosniff, no referrer, revalidation by ETag. */
#define SL_WEB_HEADERS                                                                             \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "          \
    "img-src 'self'; connect-src 'self'; form-action 'none'; base-uri 'none'; "                   \
    "frame-ancestors 'none'\r\n"                                                                  \
    "X-Content-Type-Options: nosniff\r\n"                                                         \
    "X-Frame-Options: DENY\r\n"                                                                   \
    "Referrer-Policy: no-referrer\r\n"                                                            \
    "Cross-Origin-Opener-Policy: same-origin\r\n"                                                 \
    "Cross-Origin-Resource-Policy: same-origin\r\n"                                               \
    "Cache-Control: no-cache\r\n"

/* Does an If-None-Match header value name this ETag (or "*")? */
bool sl_web_etag_match(struct sl_str inm, const char *etag);

#endif
