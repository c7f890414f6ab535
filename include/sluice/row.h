/* Turning a spooled message into a row of `logs` in PostgreSQL's COPY BINARY format
 * (https://www.postgresql.org/docs/15/sql-copy.html, "Binary Format"). Pure: the
 * caller owns the output buffer. Used by the writer thread.
 *
 * Text PostgreSQL cannot hold (NUL, invalid UTF-8) is made valid reversibly: the
 * text column gets U+FFFD for each invalid byte and U+2400 for NUL, and the exact
 * bytes go to message_raw. */
#ifndef SLUICE_ROW_H
#define SLUICE_ROW_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/buf.h"
#include "sluice/entry.h"
#include "sluice/err.h"
#include "sluice/fields.h"
#include "sluice/rfc5424.h"
#include "sluice/str.h"
#include "sluice/utf8.h"

/* The column list the rows are encoded for, in order. */
#define SL_ROW_COLUMNS                                                                             \
    "id, received_at, source_id, emitted_at, emitted_precision, emitted_offset, facility, "          \
    "severity, hostname, app_name, procid, msgid, sd, message, message_raw, parse_error, "        \
    "truncated_from, tags, frame_id, json_at"
#define SL_ROW_NCOLS 20

/* What building a row found, for the metrics. */
struct sl_row_info {
    bool parse_error;
    struct sl_syslog sl; /* the parsed header (valid when !parse_error); msg is the text
                            stored (the raw frame when parse_error) */
    struct sl_str text; /* the message as stored in logs.message: valid UTF-8, repaired
                           once here; points into the message or into scratch, valid
                           until scratch changes (the next sl_row_build) */
    bool raw_kept;   /* message_raw was set */
    int loss_code;   /* 10, 12, 13 when the line is a logplex loss notice, else 0 */
    long loss_count;
    bool has_json;          /* text holds a JSON object (drain/fields.c) ... */
    struct sl_json_at json; /* ... here; the row's json_at is json.char_off + 1 */
};

/* The COPY BINARY header and trailer. */
SL_MUSTCHECK int sl_row_copy_header(struct sl_buf *out);
SL_MUSTCHECK int sl_row_copy_trailer(struct sl_buf *out);

/* Turn a drain URL query string ("app=billing&env=prod") into the JSON object text
 * {"app":"billing","env":"prod"} (split and percent-decoded by include/sluice/qs.h, made
 * valid UTF-8), appended to out. A key or value that is not valid percent-encoding
 * ("100%", "%zz") is kept as it came rather than dropped. Appends nothing for an empty
 * query. */
SL_MUSTCHECK int sl_row_tags_json(struct sl_str query, struct sl_buf *out);

/* Append one row (row id `id`) for message m of entry e. tags_json is the entry's tags
 * as built by sl_row_tags_json (len 0: NULL). scratch is working space (reset here);
 * info->text may point into it. */
SL_MUSTCHECK int sl_row_build(struct sl_buf *out, int64_t id, const struct sl_entry *e,
                              const struct sl_entry_msg *m, struct sl_str tags_json,
                              struct sl_buf *scratch, struct sl_row_info *info);

#endif
