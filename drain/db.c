/* PostgreSQL administration (include/sluice/db.h): migrations, sources, tokens,
 * partitions, retention. Runs on the CLI's main thread or the server's maintenance
 * thread, never on the event loop. Every statement takes parameters; no SQL text is
 * built from input except partition names, which are made from dates here. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <libpq-fe.h>

#include "sluice/buf.h"
#include "sluice/dayfilter.h"
#include "sluice/db.h"
#include "sluice/digest.h"
#include "sluice/enc.h"
#include "sluice/fields.h"
#include "sluice/log.h"
#include "sluice/tokens.h"
#include "sluice/str.h"

/* Migrations: append only; never edit one that has shipped. */
static const char *const migrations[] = {
    /* 1: sources, logs (day partitions), spool checkpoints, frame de-duplication */
    "CREATE TABLE sources (\n"
    "  id bigserial PRIMARY KEY,\n"
    "  name text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),\n"
    "  token_hash bytea NOT NULL,\n"
    "  drain_token text UNIQUE,\n"
    "  retention_days int NOT NULL DEFAULT 7 CHECK (retention_days > 0),\n"
    "  created_at timestamptz NOT NULL DEFAULT now(),\n"
    "  token_rotated_at timestamptz\n"
    ");\n"
    "CREATE SEQUENCE logs_id_seq CACHE 1000;\n"
    "CREATE TABLE logs (\n"
    "  id bigint NOT NULL DEFAULT nextval('logs_id_seq'),\n"
    "  received_at timestamptz NOT NULL,\n"
    "  source_id bigint NOT NULL,\n"
    "  emitted_at timestamptz,\n"
    "  emitted_precision smallint,\n"
    "  emitted_offset smallint,\n"
    "  facility smallint,\n"
    "  severity smallint,\n"
    "  hostname text,\n"
    "  app_name text,\n"
    "  procid text,\n"
    "  msgid text,\n"
    "  sd text,\n"
    "  message text NOT NULL,\n"
    "  message_raw bytea,\n"
    "  parse_error text,\n"
    "  truncated_from integer,\n"
    "  tags jsonb,\n"
    "  frame_id text\n"
    ") PARTITION BY RANGE (received_at);\n"
    "ALTER SEQUENCE logs_id_seq OWNED BY logs.id;\n"
    "CREATE INDEX logs_source_received ON logs (source_id, received_at);\n"
    "CREATE TABLE spool_checkpoints (\n"
    "  node_id text PRIMARY KEY,\n"
    "  lsn bigint NOT NULL,\n"
    "  updated_at timestamptz NOT NULL DEFAULT now()\n"
    ");\n"
    "CREATE TABLE ingest_frames (\n"
    "  source_id bigint NOT NULL,\n"
    "  frame_id text NOT NULL,\n"
    "  seen_at timestamptz NOT NULL DEFAULT now(),\n"
    "  PRIMARY KEY (source_id, frame_id)\n"
    ");\n"
    "CREATE INDEX ingest_frames_seen ON ingest_frames (seen_at);\n",

    /* 2: alert rules, their state and the notification outbox; row ids in blocks */
    "CREATE TABLE rules (\n"
    "  id serial PRIMARY KEY,\n"
    "  name text NOT NULL UNIQUE,\n"
    "  spec jsonb NOT NULL,\n"
    "  created_at timestamptz NOT NULL DEFAULT now(),\n"
    "  updated_at timestamptz NOT NULL DEFAULT now()\n"
    ");\n"
    "CREATE TABLE destinations (\n"
    "  name text PRIMARY KEY,\n"
    "  spec jsonb NOT NULL,\n"
    "  disabled_at timestamptz,\n"
    "  disabled_reason text,\n"
    "  updated_at timestamptz NOT NULL DEFAULT now()\n"
    ");\n"
    "CREATE TABLE alert_state (\n"
    "  rule_id int NOT NULL REFERENCES rules(id) ON DELETE CASCADE,\n"
    "  group_key text NOT NULL,\n"
    "  source_id bigint,\n"
    "  firing boolean NOT NULL DEFAULT false,\n"
    "  fired_at bigint NOT NULL DEFAULT 0,\n"
    "  resolved_at bigint NOT NULL DEFAULT 0,\n"
    "  last_match_at bigint NOT NULL DEFAULT 0,\n"
    "  count bigint NOT NULL DEFAULT 0,\n"
    "  alert_id text,\n"
    "  match_times bigint[] NOT NULL DEFAULT '{}',\n"
    "  lines jsonb NOT NULL DEFAULT '[]',\n"
    "  PRIMARY KEY (rule_id, group_key)\n"
    ");\n"
    "CREATE TABLE alerts (\n"
    "  id text PRIMARY KEY,\n"
    "  rule_id int,\n"
    "  rule_name text NOT NULL,\n"
    "  group_key text NOT NULL,\n"
    "  severity text NOT NULL,\n"
    "  state text NOT NULL,\n"
    "  count bigint NOT NULL,\n"
    "  fired_at timestamptz NOT NULL,\n"
    "  resolved_at timestamptz,\n"
    "  doc jsonb NOT NULL\n"
    ");\n"
    "CREATE INDEX alerts_fired ON alerts (fired_at);\n"
    "CREATE TABLE alert_outbox (\n"
    "  id bigserial PRIMARY KEY,\n"
    "  alert_id text NOT NULL,\n"
    "  event text NOT NULL,\n"
    "  destination text NOT NULL,\n"
    "  delivery_id text NOT NULL UNIQUE,\n"
    "  doc jsonb NOT NULL,\n"
    "  status text NOT NULL DEFAULT 'pending',\n"
    "  attempts int NOT NULL DEFAULT 0,\n"
    "  next_attempt_at timestamptz NOT NULL DEFAULT now(),\n"
    "  lease_until timestamptz,\n"
    "  last_status int,\n"
    "  last_error text,\n"
    "  created_at timestamptz NOT NULL DEFAULT now(),\n"
    "  delivered_at timestamptz\n"
    ");\n"
    "CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE status = 'pending';\n"
    "CREATE SEQUENCE logs_id_block_seq;\n"
    "SELECT setval('logs_id_block_seq', (SELECT last_value FROM logs_id_seq) / 1048576 + 1);\n",

    /* 3: search. Per-block token filters (docs/search.md), read tokens for the API. */
    "CREATE TABLE log_blocks (\n"
    "  source_id bigint NOT NULL,\n"
    "  min_received timestamptz NOT NULL,\n"
    "  max_received timestamptz NOT NULL,\n"
    "  min_id bigint NOT NULL,\n"
    "  max_id bigint NOT NULL,\n"
    "  nrows int NOT NULL,\n"
    "  nbits int NOT NULL CHECK (nbits >= 8 AND nbits & (nbits - 1) = 0),\n"
    "  bloom bytea NOT NULL CHECK (length(bloom) * 8 = nbits)\n"
    ");\n"
    "ALTER TABLE log_blocks ALTER COLUMN bloom SET STORAGE PLAIN;\n"
    "CREATE UNIQUE INDEX log_blocks_key ON log_blocks (source_id, min_id);\n"
    "CREATE INDEX log_blocks_max ON log_blocks (max_received);\n"
    "CREATE INDEX log_blocks_source_max ON log_blocks (source_id, max_received);\n"
    "CREATE INDEX log_blocks_max_id ON log_blocks (max_id);\n"
    /* Rows stored before this migration: one block per source and hour with a filter
     * that says yes to every token (8 bits set), so they stay searchable (by reading). */
    "INSERT INTO log_blocks SELECT source_id, min(received_at), max(received_at), min(id),\n"
    "  max(id), count(*), 8, '\\xff'::bytea FROM logs\n"
    "  GROUP BY source_id, date_trunc('hour', received_at);\n"
    "CREATE FUNCTION sl_bloom_has(bloom bytea, nbits int, h1 bigint[], h2 bigint[])\n"
    "RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$\n"
    "DECLARE\n"
    "  a bigint;\n"
    "  b bigint;\n"
    "BEGIN\n"
    "  FOR j IN 1 .. coalesce(array_length(h1, 1), 0) LOOP\n"
    "    a := h1[j];\n"
    "    b := h2[j];\n"
    "    IF get_bit(bloom, (a % nbits)::int) = 0\n"
    "       OR get_bit(bloom, ((a + b) % nbits)::int) = 0\n"
    "       OR get_bit(bloom, ((a + 2 * b) % nbits)::int) = 0\n"
    "       OR get_bit(bloom, ((a + 3 * b) % nbits)::int) = 0 THEN\n"
    "      RETURN false;\n"
    "    END IF;\n"
    "  END LOOP;\n"
    "  RETURN true;\n"
    "END\n"
    "$f$;\n"
    /* Inlined by the planner: plain SQL, one expression, deliberately not STRICT. */
    "CREATE FUNCTION sl_bloom_has1(bloom bytea, nbits int, h1 bigint, h2 bigint)\n"
    "RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$\n"
    "  SELECT get_bit(bloom, (h1 % nbits)::int) = 1\n"
    "     AND get_bit(bloom, ((h1 + h2) % nbits)::int) = 1\n"
    "     AND get_bit(bloom, ((h1 + 2 * h2) % nbits)::int) = 1\n"
    "     AND get_bit(bloom, ((h1 + 3 * h2) % nbits)::int) = 1\n"
    "$f$;\n"
    "CREATE TABLE read_tokens (\n"
    "  id bigserial PRIMARY KEY,\n"
    "  name text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),\n"
    "  token_hash bytea NOT NULL UNIQUE,\n"
    "  all_sources boolean NOT NULL DEFAULT false,\n"
    "  source_ids bigint[] NOT NULL DEFAULT '{}',\n"
    "  created_at timestamptz NOT NULL DEFAULT now(),\n"
    "  CHECK (all_sources OR cardinality(source_ids) > 0)\n"
    ");\n",

    /* 4: the notifier's order check (rules/notifier.c claim(): no earlier pending row of
     * the same alert and destination) and its dead/disabled look-up read this index
     * instead of scanning the outbox for every candidate row. */
    "CREATE INDEX alert_outbox_order ON alert_outbox (alert_id, destination, id);\n",
    /* 5: the tail's replay reads blocks by max_id over a bounded range; the few blocks
     * whose ids span more than one id block (2^20) are found through this partial index
     * (drain/search.c, WIDE_BLOCK). */
    "CREATE INDEX log_blocks_wide ON log_blocks (max_id) WHERE max_id - min_id >= 1048576;\n",
    /* crashes (docs/crashes.md): the writer stores the lines sl_crash_anchor() flags; the
     * crash thread (rules/crashd.c) assembles what is due into crashes, once (the UNIQUE
     * key), and sends them to Sentry through alert_outbox (crash_id set). */
    "ALTER TABLE sources ADD COLUMN sentry_dsn text;\n"
    "CREATE TABLE crash_anchors (\n"
    "  line_id bigint PRIMARY KEY,\n"
    "  source_id bigint NOT NULL,\n"
    "  procid text NOT NULL,\n"
    "  kind smallint NOT NULL,\n"
    "  line_at timestamptz NOT NULL,\n"
    "  received_at timestamptz NOT NULL,\n"
    "  consumed boolean NOT NULL DEFAULT false\n"
    ");\n"
    "CREATE INDEX crash_anchors_pending ON crash_anchors (source_id, procid) WHERE NOT consumed;\n"
    "CREATE INDEX crash_anchors_proc ON crash_anchors (source_id, procid, line_at);\n"
    "CREATE INDEX crash_anchors_release ON crash_anchors (source_id, line_at) WHERE kind = 3;\n"
    "CREATE INDEX crash_anchors_received ON crash_anchors (received_at);\n"
    "CREATE TABLE crash_cursors (\n"
    "  source_id bigint NOT NULL,\n"
    "  procid text NOT NULL,\n"
    "  line_at timestamptz NOT NULL,\n"
    "  line_id bigint NOT NULL,\n"
    "  PRIMARY KEY (source_id, procid)\n"
    ");\n"
    "CREATE TABLE crashes (\n"
    "  id bigserial PRIMARY KEY,\n"
    "  source_id bigint NOT NULL,\n"
    "  procid text NOT NULL,\n"
    "  lang text NOT NULL,\n"
    "  type text NOT NULL,\n"
    "  value text NOT NULL,\n"
    "  fingerprint text NOT NULL,\n"
    "  first_line_id bigint NOT NULL,\n"
    "  last_line_id bigint NOT NULL,\n"
    "  nlines int NOT NULL,\n"
    "  truncated boolean NOT NULL DEFAULT false,\n"
    "  first_at timestamptz NOT NULL,\n"
    "  last_at timestamptz NOT NULL,\n"
    "  created_at timestamptz NOT NULL DEFAULT now(),\n"
    "  event_id text NOT NULL UNIQUE,\n"
    "  event jsonb NOT NULL,\n"
    "  delivery text NOT NULL,\n"
    "  delivery_detail text,\n"
    "  UNIQUE (source_id, procid, first_line_id)\n"
    ");\n"
    "CREATE INDEX crashes_created ON crashes (created_at);\n"
    "CREATE TABLE sentry_rate_limits (\n"
    "  dsn text PRIMARY KEY,\n"
    "  until_at timestamptz NOT NULL\n"
    ");\n"
    "ALTER TABLE alert_outbox ADD COLUMN crash_id bigint;\n",
    /* JSON lines (issue 16): where the message's JSON object starts (substr position,
     * in characters), set by the writer (drain/row.c) only for a message drain/fields.c
     * validated, so substr(message, json_at)::jsonb never raises; NULL otherwise. A
     * nullable column without a default: no table rewrite. */
    "ALTER TABLE logs ADD COLUMN json_at int;\n",
    /* the web viewer's sign-in sessions (docs/viewer.md): a session is a second secret
     * of one read token, with that token's scope, loaded with the read tokens (so every
     * node on the database knows it) and gone with it (ON DELETE CASCADE) or at sign-out */
    "CREATE TABLE web_sessions (\n"
    "  session_hash bytea PRIMARY KEY,\n"
    "  token_id bigint NOT NULL REFERENCES read_tokens (id) ON DELETE CASCADE,\n"
    "  created_at timestamptz NOT NULL DEFAULT now(),\n"
    "  expires_at timestamptz NOT NULL\n"
    ");\n"
    "CREATE INDEX web_sessions_token ON web_sessions (token_id);\n",
    /* The commit log (several writers on one database, docs/architecture.md "The path of a
     * tail"): one row per commit and source, numbered by log_commit_seq under a
     * transaction-scoped advisory lock taken just before COMMIT, so the numbers become
     * visible in their order (a lower number is committed or rolled back before a higher
     * one is taken). The live tail reads by (seq, id); NOTIFY sluice_commits wakes the tail
     * threads of every node. The key starts with source_id (Citus: docs/scaling.md). Rows
     * stored before it get one commit per token-filter block, in max_id order. */
    "CREATE SEQUENCE log_commit_seq;\n"
    "CREATE TABLE log_commits (\n"
    "  seq bigint NOT NULL,\n"
    "  source_id bigint NOT NULL,\n"
    "  id_lo bigint NOT NULL,\n"
    "  id_hi bigint NOT NULL CHECK (id_hi >= id_lo),\n"
    "  min_received timestamptz NOT NULL,\n"
    "  max_received timestamptz NOT NULL,\n"
    "  nrows int NOT NULL,\n"
    "  node_id text NOT NULL,\n"
    "  PRIMARY KEY (source_id, seq, id_lo)\n"
    ");\n"
    "CREATE INDEX log_commits_seq ON log_commits (seq);\n"
    "CREATE INDEX log_commits_id ON log_commits (id_lo);\n"
    "INSERT INTO log_commits SELECT row_number() OVER (ORDER BY max_id, source_id), source_id,\n"
    "  min_id, max_id, min_received, max_received, nrows, 'before-commit-log' FROM log_blocks;\n"
    "SELECT setval('log_commit_seq', (SELECT max(seq) FROM log_commits)) "
    "WHERE EXISTS (SELECT 1 FROM log_commits);\n"
    /* A writer's last statement before COMMIT: $1 node, then per source of the commit its
     * id range (contiguous: the COPY is grouped by source), received_at range (µs since
     * the epoch) and row count. Returns the commit's number. */
    "CREATE FUNCTION sl_commit_stamp(node text, sources bigint[], lo bigint[], hi bigint[],\n"
    "  rmin bigint[], rmax bigint[], n int[]) RETURNS bigint LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    "  s bigint;\n"
    "BEGIN\n"
    "  PERFORM pg_advisory_xact_lock(7355002);\n"
    "  s := nextval('log_commit_seq');\n"
    "  INSERT INTO log_commits SELECT s, u.src, u.lo, u.hi,\n"
    "    timestamptz 'epoch' + u.rmin * interval '1 microsecond',\n"
    "    timestamptz 'epoch' + u.rmax * interval '1 microsecond', u.n, node\n"
    "    FROM unnest(sources, lo, hi, rmin, rmax, n) AS u(src, lo, hi, rmin, rmax, n);\n"
    "  PERFORM pg_notify('sluice_commits', s::text);\n"
    "  RETURN s;\n"
    "END\n"
    "$f$;\n",
    /* archives (docs/retention.md): a source's archive destination; every hour file
     * written and verified (retention deletes an archived source's hour only once its row
     * is here); days a restore holds back from retention. */
    "ALTER TABLE sources ADD COLUMN archive text;\n"
    "CREATE TABLE archive_hours (\n"
    "  source_id bigint NOT NULL,\n"
    "  hour timestamptz NOT NULL,\n"
    "  path text NOT NULL,\n"
    "  nrows bigint NOT NULL,\n"
    "  bytes bigint NOT NULL,\n"
    "  sha256 text NOT NULL,\n"
    "  written_at timestamptz NOT NULL DEFAULT now(),\n"
    "  PRIMARY KEY (source_id, hour)\n"
    ");\n"
    "CREATE TABLE archive_holds (\n"
    "  source_id bigint NOT NULL,\n"
    "  day date NOT NULL,\n"
    "  until timestamptz NOT NULL,\n"
    "  PRIMARY KEY (source_id, day)\n"
    ");\n",
    /* compaction (docs/search.md "Compacted days"): a closed day's rows of a source packed
     * into rows of log_packs, one per log_blocks row marked packed, holding that block's
     * rows (an array of the logs row type, in id order, compressed by TOAST). A packed
     * block's rows are exactly its pack: never also in logs. */
    "ALTER TABLE log_blocks ADD COLUMN packed boolean NOT NULL DEFAULT false;\n"
    /* when a writer last upserted the block: compaction leaves a block a writer may still
     * extend (one touched in the last few minutes) */
    "ALTER TABLE log_blocks ADD COLUMN touched_at timestamptz NOT NULL DEFAULT now();\n"
    /* day partitions (log_packs_YYYYMMDD, made by compaction) dropped with the day's
     * logs partition, so a day's packs give their disk back at once */
    "CREATE TABLE log_packs (\n"
    "  source_id bigint NOT NULL,\n"
    "  day date NOT NULL,\n"
    "  min_id bigint NOT NULL,\n"
    "  rows logs[] NOT NULL,\n"
    "  PRIMARY KEY (source_id, day, min_id)\n"
    ") PARTITION BY RANGE (day);\n"
    /* The packed rows of a source received in [t0, t1): with the live ones in logs, every
     * stored row of that source and time. */
    "CREATE FUNCTION sl_packed_rows(src bigint, t0 timestamptz, t1 timestamptz)\n"
    "RETURNS SETOF logs LANGUAGE sql STABLE AS $f$\n"
    "  SELECT u.* FROM log_blocks b JOIN log_packs p ON p.source_id = b.source_id\n"
    "    AND p.day = (b.min_received AT TIME ZONE 'UTC')::date AND p.min_id = b.min_id\n"
    "    CROSS JOIN LATERAL unnest(p.rows) u\n"
    "  WHERE b.packed AND b.source_id = src AND b.max_received >= t0 AND b.min_received < t1\n"
    "    AND u.received_at >= t0 AND u.received_at < t1\n"
    "$f$;\n"
    /* Remove a source's packed rows received in [t0, t1), at most maxpacks packs a call:
     * a pack wholly inside goes with its block; one partly inside is rewritten without
     * those rows and its block's bounds follow (its filter stays: a superset). Returns
     * the rows removed. Retention and archives (docs/retention.md). */
    "CREATE FUNCTION sl_packs_delete(src bigint, t0 timestamptz, t1 timestamptz, maxpacks int)\n"
    "RETURNS bigint LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    "  b record;\n"
    "  kept logs[];\n"
    "  k int;\n"
    "  n bigint := 0;\n"
    "BEGIN\n"
    "  FOR b IN SELECT bl.min_id, bl.nrows, bl.min_received >= t0 AND bl.max_received < t1 AS whole,\n"
    "      (bl.min_received AT TIME ZONE 'UTC')::date AS day\n"
    "      FROM log_blocks bl WHERE bl.packed AND bl.source_id = src AND bl.max_received >= t0\n"
    "      AND bl.min_received < t1 ORDER BY bl.min_received LIMIT maxpacks FOR UPDATE LOOP\n"
    "    k := 0;\n"
    "    IF NOT b.whole THEN\n"
    "      SELECT array_agg(u ORDER BY u.id) INTO kept FROM log_packs p, unnest(p.rows) u\n"
    "        WHERE p.source_id = src AND p.day = b.day AND p.min_id = b.min_id\n"
    "        AND NOT (u.received_at >= t0 AND u.received_at < t1);\n"
    "      k := coalesce(array_length(kept, 1), 0);\n"
    "    END IF;\n"
    "    IF k = 0 THEN\n"
    "      DELETE FROM log_packs WHERE source_id = src AND day = b.day AND min_id = b.min_id;\n"
    "      DELETE FROM log_blocks WHERE source_id = src AND min_id = b.min_id;\n"
    "    ELSE\n"
    "      UPDATE log_blocks SET min_id = x.i0, max_id = x.i1, min_received = x.r0,\n"
    "        max_received = x.r1, nrows = k FROM (SELECT min(u.id) i0, max(u.id) i1,\n"
    "        min(u.received_at) r0, max(u.received_at) r1 FROM unnest(kept) u) x\n"
    "        WHERE source_id = src AND log_blocks.min_id = b.min_id;\n"
    "      UPDATE log_packs SET min_id = (kept[1]).id, rows = kept\n"
    "        WHERE source_id = src AND day = b.day AND min_id = b.min_id;\n"
    "    END IF;\n"
    "    n := n + b.nrows - k;\n"
    "  END LOOP;\n"
    "  RETURN n;\n"
    "END\n"
    "$f$;\n",
    /* the disk guard (docs/retention.md "Disk guard"): whether a source's oldest rows may
     * go before their retention when the database's disk passes SLUICE_DISK_EVICT_PCT (off
     * unless set: deleting before the retention the operator chose is their decision); the
     * days whose rows it began deleting and whose partition is not yet rewritten or
     * dropped (finished first by the next node that evicts). */
    "ALTER TABLE sources ADD COLUMN disk_evict boolean NOT NULL DEFAULT false;\n"
    "CREATE TABLE disk_evict_days (\n"
    "  day date PRIMARY KEY,\n"
    "  started_at timestamptz NOT NULL DEFAULT now()\n"
    ");\n",
    /* 13: the day level (docs/search.md "The day level"): compaction writes one sliced
     * filter per packed (source, day), 256 rows, in the transaction that packs it, and
     * marks the blocks it writes coarse. A search with words checks the day level first
     * and reads only the coarse blocks of the (source, day)s that pass; every other block
     * (live ones, packed ones without a day filter) through log_blocks_fine. */
    "ALTER TABLE log_blocks ADD COLUMN coarse boolean NOT NULL DEFAULT false;\n"
    "CREATE INDEX log_blocks_fine ON log_blocks (max_received) WHERE NOT coarse;\n"
    "CREATE TABLE log_day_filters (\n"
    "  slice smallint NOT NULL,\n"
    "  day date NOT NULL,\n"
    "  source_id bigint NOT NULL,\n"
    "  nbits integer NOT NULL,\n"
    "  bloom bytea NOT NULL,\n"
    "  PRIMARY KEY (slice, day, source_id)\n"
    ");\n"
    "ALTER TABLE log_day_filters ALTER COLUMN bloom SET STORAGE EXTERNAL;\n"
    "CREATE INDEX log_day_filters_day ON log_day_filters (day, source_id);\n",
    /* 14: the hour level (docs/search.md "The hour level"): the maintenance thread writes
     * one sliced filter (64 rows) per closed (source, UTC hour) of live blocks and marks
     * those blocks hourly in the same transaction; a (source, hour) whose blocks came
     * late gets a second set (another gen). A search reads an hourly
     * block only when a filter of its (source, hour) passes. Compaction deletes a day's
     * hour level when it packs the day; a writer's upsert of a block clears the mark. */
    "ALTER TABLE log_blocks ADD COLUMN hourly boolean NOT NULL DEFAULT false;\n"
    "DROP INDEX log_blocks_fine;\n"
    "CREATE INDEX log_blocks_fine ON log_blocks (max_received) WHERE NOT coarse AND NOT hourly;\n"
    "CREATE TABLE log_hour_filters (\n"
    "  slice smallint NOT NULL,\n"
    "  hour timestamptz NOT NULL,\n"
    "  source_id bigint NOT NULL,\n"
    "  gen bigint NOT NULL,\n"
    "  nbits integer NOT NULL,\n"
    "  bloom bytea NOT NULL,\n"
    "  PRIMARY KEY (slice, hour, source_id, gen)\n"
    ");\n"
    "ALTER TABLE log_hour_filters ALTER COLUMN bloom SET STORAGE EXTERNAL;\n"
    "CREATE INDEX log_hour_filters_hour ON log_hour_filters (hour, source_id);\n",
    /* 15: an hour level set's gen from a sequence: a set's first block's min_id could
     * come again (that block's mark cleared by its writer and the block taken into a new
     * set, or blocks of a restored day) while the older set still stands. */
    "CREATE SEQUENCE log_hour_filters_gen;\n",
    /* 16: numeric field classes (docs/search.md "Numeric fields"): the filters of blocks
     * written from now on also hold, for each key=number of a line, the token of the
     * number's class; classes marks them, so a search asks those blocks for a class and
     * reads the others (written by an older release) as before. */
    "ALTER TABLE log_blocks ADD COLUMN classes boolean NOT NULL DEFAULT false;\n",
    /* 17: compressed packs (docs/search.md "Compressed packs"): a pack holds its rows
     * either as an array (rows, TOAST-compressed) or as sluice_pack's bytea (data), never
     * both. sluice_pack and sluice_unpack are placeholders here (no compression: packs
     * stay arrays) until sl_db_pack_module binds them to the server module
     * drain/pg/sluice_pg.c; sl_pack_rows reads either form, and every reader of packs
     * goes through it. The partial index finds the arrays left to compress. */
    "ALTER TABLE log_packs ALTER COLUMN rows DROP NOT NULL;\n"
    "ALTER TABLE log_packs ADD COLUMN data bytea;\n"
    "ALTER TABLE log_packs ALTER COLUMN data SET STORAGE EXTERNAL;\n"
    "ALTER TABLE log_packs ADD CONSTRAINT log_packs_one_form CHECK ((rows IS NULL) <> (data IS NULL));\n"
    "CREATE INDEX log_packs_arrays ON log_packs (day) WHERE rows IS NOT NULL;\n"
    "CREATE FUNCTION sluice_pack(r logs[]) RETURNS bytea LANGUAGE sql IMMUTABLE\n"
    "  AS 'SELECT NULL::bytea';\n"
    "CREATE FUNCTION sluice_unpack(d bytea) RETURNS SETOF logs LANGUAGE plpgsql IMMUTABLE STRICT\n"
    "AS $f$ BEGIN\n"
    "  RAISE EXCEPTION 'a compressed pack, and sluice_unpack is not bound to the sluice_pg module'\n"
    "    USING HINT = 'install it (make pg-module) and run sluice migrate as a superuser';\n"
    "END $f$;\n"
    "CREATE FUNCTION sl_pack_rows(r logs[], d bytea) RETURNS SETOF logs LANGUAGE sql IMMUTABLE\n"
    "  AS 'SELECT * FROM unnest(r) UNION ALL SELECT * FROM sluice_unpack(d)';\n"
    /* a search's: the same rows, or none from a compressed pack whose messages do not
     * hold every needle (sl_query_needles); the placeholder reads the pack whole */
    "CREATE FUNCTION sluice_unpack_having(d bytea, needles text[]) RETURNS SETOF logs\n"
    "  LANGUAGE sql IMMUTABLE AS 'SELECT * FROM sluice_unpack(d)';\n"
    "CREATE FUNCTION sl_pack_rows_having(r logs[], d bytea, needles text[]) RETURNS SETOF logs\n"
    "  LANGUAGE sql IMMUTABLE\n"
    "  AS 'SELECT * FROM unnest(r) UNION ALL SELECT * FROM sluice_unpack_having(d, needles)';\n"
    "CREATE OR REPLACE FUNCTION sl_packed_rows(src bigint, t0 timestamptz, t1 timestamptz)\n"
    "RETURNS SETOF logs LANGUAGE sql STABLE AS $f$\n"
    "  SELECT u.* FROM log_blocks b JOIN log_packs p ON p.source_id = b.source_id\n"
    "    AND p.day = (b.min_received AT TIME ZONE 'UTC')::date AND p.min_id = b.min_id\n"
    "    CROSS JOIN LATERAL sl_pack_rows(p.rows, p.data) u\n"
    "  WHERE b.packed AND b.source_id = src AND b.max_received >= t0 AND b.min_received < t1\n"
    "    AND u.received_at >= t0 AND u.received_at < t1\n"
    "$f$;\n"
    /* as in migration 6, and a pack partly kept is written back in the form it had */
    "CREATE OR REPLACE FUNCTION sl_packs_delete(src bigint, t0 timestamptz, t1 timestamptz, maxpacks int)\n"
    "RETURNS bigint LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    "  b record;\n"
    "  kept logs[];\n"
    "  k int;\n"
    "  n bigint := 0;\n"
    "BEGIN\n"
    "  FOR b IN SELECT bl.min_id, bl.nrows, bl.min_received >= t0 AND bl.max_received < t1 AS whole,\n"
    "      (bl.min_received AT TIME ZONE 'UTC')::date AS day\n"
    "      FROM log_blocks bl WHERE bl.packed AND bl.source_id = src AND bl.max_received >= t0\n"
    "      AND bl.min_received < t1 ORDER BY bl.min_received LIMIT maxpacks FOR UPDATE LOOP\n"
    "    k := 0;\n"
    "    IF NOT b.whole THEN\n"
    "      SELECT array_agg(u ORDER BY u.id) INTO kept FROM log_packs p,\n"
    "        sl_pack_rows(p.rows, p.data) u\n"
    "        WHERE p.source_id = src AND p.day = b.day AND p.min_id = b.min_id\n"
    "        AND NOT (u.received_at >= t0 AND u.received_at < t1);\n"
    "      k := coalesce(array_length(kept, 1), 0);\n"
    "    END IF;\n"
    "    IF k = 0 THEN\n"
    "      DELETE FROM log_packs WHERE source_id = src AND day = b.day AND min_id = b.min_id;\n"
    "      DELETE FROM log_blocks WHERE source_id = src AND min_id = b.min_id;\n"
    "    ELSE\n"
    "      UPDATE log_blocks SET min_id = x.i0, max_id = x.i1, min_received = x.r0,\n"
    "        max_received = x.r1, nrows = k FROM (SELECT min(u.id) i0, max(u.id) i1,\n"
    "        min(u.received_at) r0, max(u.received_at) r1 FROM unnest(kept) u) x\n"
    "        WHERE source_id = src AND log_blocks.min_id = b.min_id;\n"
    "      UPDATE log_packs SET min_id = (kept[1]).id,\n"
    "        rows = CASE WHEN data IS NULL THEN kept END,\n"
    "        data = CASE WHEN data IS NOT NULL THEN sluice_pack(kept) END\n"
    "        WHERE source_id = src AND day = b.day AND min_id = b.min_id;\n"
    "    END IF;\n"
    "    n := n + b.nrows - k;\n"
    "  END LOOP;\n"
    "  RETURN n;\n"
    "END\n"
    "$f$;\n",
};

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Every session sluice opens: no JIT. Its statements are short, and compiling them costs
 * more than they run once a plan's cost passes jit_above_cost: compaction's clear_old over
 * a month of partitions (100M lines) spent 881 ms of 941 compiling 299 functions, 34 ms
 * without (docs/search.md). A failure here is harmless (the default stays). */
static void session_settings(PGconn *c)
{
    PQclear(PQexec(c, "SET jit = off"));
}

int sl_db_connect(const char *url, struct pg_conn **out)
{
    PGconn *c = PQconnectdb(url);

    if (PQstatus(c) != CONNECTION_OK) {
        sl_db_log_error("database connection failed", c, NULL);
        PQfinish(c);
        return SL_EDB;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    session_settings(c);
    *out = c;
    return 0;
}

void sl_db_close(struct pg_conn *c)
{
    if (c)
        PQfinish(c);
}

bool sl_db_ok(struct pg_conn *c)
{
    if (PQstatus(c) == CONNECTION_OK)
        return true;
    PQreset(c);
    if (PQstatus(c) != CONNECTION_OK)
        return false;
    session_settings(c);
    return true;
}

void sl_db_log_error(const char *what, struct pg_conn *c, const struct pg_result *r)
{
    const char *e = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
    char buf[512];
    size_t n;

    snprintf(buf, sizeof(buf), "%s", e ? e : "");
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    for (char *p = buf; *p; p++)
        if (*p == '"' || *p == '\n' || *p == '\t')
            *p = *p == '"' ? '\'' : ' ';
    sl_error(what, "err=\"%s\"", buf);
}

#define log_pg sl_db_log_error

int sl_db_listen(struct pg_conn **c, const char *url, const char *listen)
{
    PGresult *r;
    int rc = 1;

    if (*c && PQstatus(*c) == CONNECTION_OK)
        return 0;
    sl_db_close(*c);
    *c = NULL;
    if (sl_db_connect(url, c))
        return SL_EDB;
    r = PQexec(*c, listen);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = SL_EDB;
    PQclear(r);
    return rc;
}

int sl_db_array_add(struct sl_buf *b, const char *name)
{
    return sl_buf_addf(b, "%s\"%s\"", b->len == 0 ? "{" : ",", name);
}

int sl_db_array_end(struct sl_buf *b)
{
    int rc = b->len == 0 ? sl_buf_addc(b, '{') : 0;
    return rc ? rc : sl_buf_add(b, "}", 2);
}

int sl_db_exec(struct pg_conn *c, const char *what, const char *sql, int n,
               const char *const *vals, struct pg_result **res)
{
    PGresult *r = n == 0 ? PQexec(c, sql) : PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        log_pg(what, c, r);
        PQclear(r);
        if (res)
            *res = NULL;
        return SL_EDB;
    }
    if (res)
        *res = r;
    else
        PQclear(r);
    return 0;
}

/* Change the one row named $1 (sql: "... WHERE name = $1 RETURNING id") and tell running
 * servers (NOTIFY sluice_sources). SL_ENOTFOUND when there was none. */
static int change_named(PGconn *c, const char *what, const char *sql, int n,
                        const char *const *vals)
{
    PGresult *r = NULL;
    int rc;

    if ((rc = sl_db_exec(c, what, sql, n, vals, &r)))
        return rc;
    rc = PQntuples(r) == 1 ? 0 : SL_ENOTFOUND;
    PQclear(r);
    if (rc == 0)
        PQclear(PQexec(c, "NOTIFY sluice_sources"));
    return rc;
}

int sl_db_migrate(struct pg_conn *c, FILE *progress)
{
    int rc = SL_EDB, have = 0;
    PGresult *r = NULL;
    int n = (int)(sizeof(migrations) / sizeof(migrations[0]));

    /* One migrator at a time across nodes (Heroku release phase, make test). */
    if (sl_db_exec(c, "migration lock failed", "SELECT pg_advisory_lock(7355001)", 0, NULL,
                   NULL))
        return SL_EDB;
    if (sl_db_exec(c, "migration table failed",
                   "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, "
                   "applied_at timestamptz NOT NULL DEFAULT now())",
                   0, NULL, NULL))
        goto out;
    if (sl_db_exec(c, "migration query failed",
                   "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL, &r))
        goto out;
    have = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    r = NULL;
    for (int v = have + 1; v <= n; v++) {
        char vs[16];
        const char *vals[1] = {vs};

        snprintf(vs, sizeof(vs), "%d", v);
        if (sl_db_exec(c, "migration failed", "BEGIN", 0, NULL, NULL))
            goto out;
        if (sl_db_exec(c, "migration failed", migrations[v - 1], 0, NULL, NULL)) {
            PQclear(PQexec(c, "ROLLBACK"));
            goto out;
        }
        if (sl_db_exec(c, "migration failed",
                       "INSERT INTO schema_migrations (version) VALUES ($1::int)", 1, vals,
                       NULL) ||
            sl_db_exec(c, "migration commit failed", "COMMIT", 0, NULL, NULL)) {
            PQclear(PQexec(c, "ROLLBACK"));
            goto out;
        }
        if (progress)
            fprintf(progress, "applied migration %d\n", v);
    }
    if (progress)
        fprintf(progress, "schema at version %d\n", n > have ? n : have);
    rc = 0;
out:
    PQclear(r);
    PQclear(PQexec(c, "SELECT pg_advisory_unlock(7355001)"));
    return rc;
}

/* The round trip sl_db_pack_module checks: one row with a NULL, a JSON value and text
 * that is not ASCII, and an empty pack. */
#define PACK_CHECK                                                                                 \
    "SELECT (SELECT array_agg(u) FROM sluice_unpack(sluice_pack(a)) u) IS NOT DISTINCT FROM a "    \
    "AND NOT EXISTS (SELECT FROM sluice_unpack(sluice_pack('{}'::logs[]))) "                     \
    "AND (SELECT count(*) FROM sluice_unpack_having(sluice_pack(a), '{\"SUM\"}')) = 0 "           \
    "AND (SELECT count(*) FROM sluice_unpack_having(sluice_pack(a), '{\"sum\"}')) = 1 "           \
    "FROM (SELECT ARRAY[json_populate_record(NULL::logs, '{\"id\": 7, \"received_at\": "           \
    "\"2026-01-02T03:04:05.678901Z\", \"source_id\": -3, \"severity\": 3, \"message\": "        \
    "\"r\u00e9sum\u00e9\", \"tags\": {\"a\": [1]}}')] a) x"

int sl_db_pack_module(struct pg_conn *c, FILE *progress)
{
    const char *mode = getenv("SLUICE_PACK_MODULE");
    PGresult *r = PQexec(c, "SELECT count(*) = 3 FROM pg_proc p JOIN pg_language l ON "
                            "l.oid = p.prolang WHERE l.lanname = 'c' AND p.oid IN "
                            "('sluice_unpack(bytea)'::regprocedure, 'sluice_pack(logs[])'::"
                            "regprocedure, 'sluice_unpack_having(bytea, text[])'::regprocedure)");
    bool bound;

    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        log_pg("pack module query failed", c, r);
        PQclear(r);
        return SL_EDB;
    }
    bound = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!bound && mode && !strcmp(mode, "off")) {
        if (progress)
            fprintf(progress, "packs: arrays of rows (SLUICE_PACK_MODULE=off)\n");
        return 0;
    }
    if (!bound) {
        /* one binder at a time; a failure leaves the placeholders as they were */
        r = PQexec(c, "BEGIN; SELECT pg_advisory_xact_lock(7355017); "
                      "CREATE OR REPLACE FUNCTION sluice_unpack(d bytea) RETURNS SETOF logs AS "
                      "'sluice_pg', 'sluice_unpack' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE; "
                      "CREATE OR REPLACE FUNCTION sluice_pack(r logs[]) RETURNS bytea AS "
                      "'sluice_pg', 'sluice_pack' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE; "
                      "CREATE OR REPLACE FUNCTION sluice_unpack_having(d bytea, needles text[]) "
                      "RETURNS SETOF logs AS 'sluice_pg', 'sluice_unpack_having' LANGUAGE C "
                      "IMMUTABLE PARALLEL SAFE");
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            char why[200];
            snprintf(why, sizeof(why), "%s", PQresultErrorMessage(r));
            why[strcspn(why, "\n")] = '\0';
            PQclear(r);
            PQclear(PQexec(c, "ROLLBACK"));
            sl_info("packs stay arrays of rows", "why=\"%s\" hint=\"make pg-module, then sluice "
                    "migrate as a superuser (docs/search.md)\"", why);
            if (progress)
                fprintf(progress, "packs: arrays of rows (sluice_pg not bound: %s)\n", why);
            return 0;
        }
        PQclear(r);
    }
    r = PQexec(c, PACK_CHECK);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
        PQgetvalue(r, 0, 0)[0] != 't') {
        log_pg("pack module check failed", c, r);
        PQclear(r);
        if (!bound)
            PQclear(PQexec(c, "ROLLBACK"));
        return SL_EDB;
    }
    PQclear(r);
    if (!bound && sl_db_exec(c, "pack module bind failed", "COMMIT", 0, NULL, NULL))
        return SL_EDB;
    if (progress)
        fprintf(progress, "packs: compressed (sluice_pg module)\n");
    return 1;
}

int sl_db_schema_check(struct pg_conn *c)
{
    int n = (int)(sizeof(migrations) / sizeof(migrations[0])), have;
    PGresult *r = PQexec(c, "SELECT coalesce(max(version), 0) FROM schema_migrations");

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        sl_error("database has no sluice schema", "hint=\"run sluice migrate first\"");
        return SL_EDB;
    }
    have = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (have >= n)
        return 0;
    sl_error("database schema is older than this sluice", "have=%d need=%d hint=\"run sluice migrate first\"",
             have, n);
    return SL_EDB;
}

int sl_token_new(char out[SL_TOKEN_HEX + 1])
{
    unsigned char raw[SL_TOKEN_HEX / 2];
    size_t got = 0;

    while (got < sizeof(raw)) {
        ssize_t k = getrandom(raw + got, sizeof(raw) - got, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            sl_error("getrandom failed", "err=\"%s\"", strerror(errno));
            return SL_EIO;
        }
        got += (size_t)k;
    }
    sl_enc_hex(raw, sizeof(raw), out);
    return 0;
}

static bool valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SL_SOURCE_NAME_MAX || !isalnum((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '-')
            return false;
    }
    return true;
}

/* A stored token_hash as PostgreSQL's encode(.., 'hex') gives it; anything but 64 hex
 * digits leaves the hash zero (no token hashes to it). */
static void unhex_hash(const char *hh, unsigned char out[32])
{
    if (sl_enc_unhex(hh, strlen(hh), out, 32) != 32)
        memset(out, 0, 32);
}

static void hash_hex(const char *token, char out[65])
{
    sl_digest_sha256_hex(token, strlen(token), out);
}

int sl_db_source_add(struct pg_conn *c, const char *name, int retention_days,
                     const char *drain_token, char token[SL_TOKEN_HEX + 1])
{
    char hh[65], rd[16];
    const char *vals[4];
    PGresult *r = NULL;
    int rc;

    if (!valid_name(name)) {
        sl_error("bad source name",
                 "name=\"%.64s\" want=\"1-63 of A-Z a-z 0-9 . _ -, starting alphanumeric\"",
                 name);
        return SL_EINVAL;
    }
    if ((rc = sl_token_new(token)))
        return rc;
    hash_hex(token, hh);
    snprintf(rd, sizeof(rd), "%d", retention_days > 0 ? retention_days : 7);
    vals[0] = name;
    vals[1] = hh;
    vals[2] = rd;
    vals[3] = drain_token && drain_token[0] ? drain_token : NULL;
    if ((rc = sl_db_exec(c, "source add failed",
                         "INSERT INTO sources (name, token_hash, retention_days, drain_token) "
                         "VALUES ($1, decode($2, 'hex'), $3::int, $4) ON CONFLICT (name) DO "
                         "NOTHING RETURNING id",
                         4, vals, &r)))
        return rc;
    rc = PQntuples(r) == 1 ? 0 : SL_EINVAL;
    PQclear(r);
    if (rc) {
        sl_error("source exists", "name=%s", name);
        return rc;
    }
    PQclear(PQexec(c, "NOTIFY sluice_sources"));
    return 0;
}

int sl_db_source_rotate(struct pg_conn *c, const char *name, char token[SL_TOKEN_HEX + 1])
{
    char hh[65];
    const char *vals[2] = {name, hh};
    int rc;

    if ((rc = sl_token_new(token)))
        return rc;
    hash_hex(token, hh);
    return change_named(c, "source rotate failed",
                        "UPDATE sources SET token_hash = decode($2, 'hex'), "
                        "token_rotated_at = now() WHERE name = $1 RETURNING id",
                        2, vals);
}

int sl_db_source_rm(struct pg_conn *c, const char *name)
{
    return change_named(c, "source rm failed", "DELETE FROM sources WHERE name = $1 RETURNING id",
                        1, &name);
}

int sl_db_source_set_dsn(struct pg_conn *c, const char *name, const char *dsn)
{
    const char *vals[2] = {name, dsn && dsn[0] ? dsn : NULL};
    return change_named(c, "source set failed",
                        "UPDATE sources SET sentry_dsn = $2 WHERE name = $1 RETURNING id", 2,
                        vals);
}

int sl_db_source_list(struct pg_conn *c, FILE *out)
{
    PGresult *r = NULL;
    int rc = sl_db_exec(c, "source list failed",
                        "SELECT name, retention_days, "
                        "CASE WHEN disk_evict THEN 'yes' ELSE 'no' END, "
                        "coalesce(drain_token, '-'), "
                        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                        /* the DSN without its key: host and project */
                        "coalesce(regexp_replace(sentry_dsn, '^([A-Za-z]+://)[^@]*@', '\\1'), '-') "
                        "FROM sources ORDER BY name",
                        0, NULL, &r);
    if (rc)
        return rc;
    fprintf(out, "%-24s %-9s %-10s %-40s %-20s %s\n", "NAME", "RETENTION", "DISK-EVICT",
            "DRAIN-TOKEN", "CREATED", "SENTRY");
    for (int i = 0; i < PQntuples(r); i++)
        fprintf(out, "%-24s %-9s %-10s %-40s %-20s %s\n", PQgetvalue(r, i, 0),
                PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
                PQgetvalue(r, i, 4), PQgetvalue(r, i, 5));
    PQclear(r);
    return 0;
}

int sl_db_load_sources(struct pg_conn *c, struct sl_source_row **rows, size_t *n)
{
    PGresult *r = NULL;
    struct sl_source_row *v;
    int rc = sl_db_exec(c, "source load failed",
                        "SELECT id, name, encode(token_hash, 'hex'), coalesce(drain_token, ''), "
                        "retention_days FROM sources ORDER BY id",
                        0, NULL, &r);
    if (rc)
        return rc;
    v = calloc((size_t)PQntuples(r) + 1, sizeof(*v));
    if (v == NULL) {
        PQclear(r);
        return SL_ENOMEM;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        const char *hh = PQgetvalue(r, i, 2);
        v[i].id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        snprintf(v[i].name, sizeof(v[i].name), "%s", PQgetvalue(r, i, 1));
        unhex_hash(hh, v[i].token_hash);
        snprintf(v[i].drain_token, sizeof(v[i].drain_token), "%s", PQgetvalue(r, i, 3));
        v[i].retention_days = atoi(PQgetvalue(r, i, 4));
    }
    *n = (size_t)PQntuples(r);
    *rows = v;
    PQclear(r);
    return 0;
}

/* ---- read tokens (docs/api.md "Read tokens") ---- */

void sl_read_token_rows_free(struct sl_read_token_row *rows, size_t n)
{
    if (rows == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(rows[i].source_ids);
    free(rows);
}

int sl_db_read_token_add(struct pg_conn *c, const char *name, bool all,
                         const char *const *sources, size_t nsources,
                         char token[SL_READ_TOKEN_LEN + 1], const char **unknown)
{
    struct sl_buf names, ids;
    char hh[65];
    const char *vals[4];
    PGresult *r = NULL;
    bool began = false;
    int rc;

    sl_buf_init(&names, 1 << 20);
    sl_buf_init(&ids, 1 << 20);
    if (unknown)
        *unknown = NULL;
    if (!valid_name(name)) {
        sl_error("bad read token name",
                 "name=\"%.64s\" want=\"1-63 of A-Z a-z 0-9 . _ -, starting alphanumeric\"",
                 name);
        return SL_EINVAL;
    }
    if (all == (nsources > 0))
        return SL_EINVAL;
    for (size_t i = 0; i < nsources; i++) {
        /* A name no source could have cannot exist; it must not reach the array literal. */
        if (!valid_name(sources[i])) {
            if (unknown)
                *unknown = sources[i];
            return SL_ENOTFOUND;
        }
        if ((rc = sl_db_array_add(&names, sources[i])))
            goto out;
    }
    if ((rc = sl_db_array_end(&names)))
        goto out;
    memcpy(token, SL_READ_TOKEN_PREFIX, 4);
    if ((rc = sl_token_new(token + 4)))
        goto out;
    hash_hex(token, hh);
    if ((rc = sl_db_exec(c, "read token add failed", "BEGIN", 0, NULL, NULL)))
        goto out;
    began = true;
    /* KEY SHARE: a concurrent `source rm` waits until the token row is in. */
    vals[0] = names.p;
    if ((rc = sl_db_exec(c, "read token add failed",
                         "SELECT id, name FROM sources WHERE name = ANY($1::text[]) "
                         "ORDER BY id FOR KEY SHARE",
                         1, vals, &r)))
        goto out;
    for (size_t i = 0; i < nsources; i++) {
        bool found = false;
        for (int k = 0; k < PQntuples(r) && !found; k++)
            found = strcmp(PQgetvalue(r, k, 1), sources[i]) == 0;
        if (!found) {
            if (unknown)
                *unknown = sources[i];
            rc = SL_ENOTFOUND;
            goto out;
        }
    }
    for (int k = 0; k < PQntuples(r); k++)
        if ((rc = sl_buf_addf(&ids, "%s%s", k ? "," : "{", PQgetvalue(r, k, 0))))
            goto out;
    if ((rc = ids.len ? sl_buf_add(&ids, "}", 2) : sl_buf_add(&ids, "{}", 3)))
        goto out;
    PQclear(r);
    r = NULL;
    vals[0] = name;
    vals[1] = hh;
    vals[2] = all ? "true" : "false";
    vals[3] = ids.p;
    if ((rc = sl_db_exec(c, "read token add failed",
                         "INSERT INTO read_tokens (name, token_hash, all_sources, source_ids) "
                         "VALUES ($1, decode($2, 'hex'), $3::boolean, $4::bigint[]) "
                         "ON CONFLICT (name) DO NOTHING RETURNING id",
                         4, vals, &r)))
        goto out;
    if (PQntuples(r) != 1) {
        sl_error("read token exists", "name=%s", name);
        rc = SL_EINVAL;
        goto out;
    }
    /* Delivered at COMMIT: running servers reload with the row in place. */
    if ((rc = sl_db_exec(c, "read token add failed", "NOTIFY sluice_sources", 0, NULL, NULL)) ||
        (rc = sl_db_exec(c, "read token add failed", "COMMIT", 0, NULL, NULL)))
        goto out;
    began = false;
out:
    PQclear(r);
    if (began)
        PQclear(PQexec(c, "ROLLBACK"));
    sl_buf_free(&names);
    sl_buf_free(&ids);
    if (rc)
        memset(token, 0, SL_READ_TOKEN_LEN + 1);
    return rc;
}

int sl_db_read_token_rm(struct pg_conn *c, const char *name)
{
    return change_named(c, "read token rm failed",
                        "DELETE FROM read_tokens WHERE name = $1 RETURNING id", 1, &name);
}

int sl_db_read_token_list(struct pg_conn *c, FILE *out)
{
    PGresult *r = NULL;
    /* Scope by name; ids of removed sources are counted, never shown as names. */
    int rc = sl_db_exec(
        c, "read token list failed",
        "SELECT t.name, to_char(t.created_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), t.all_sources, "
        "coalesce(string_agg(s.name, ',' ORDER BY s.name), ''), "
        "cardinality(t.source_ids) - count(s.id) "
        "FROM read_tokens t LEFT JOIN sources s ON s.id = ANY(t.source_ids) "
        "GROUP BY t.id ORDER BY t.name",
        0, NULL, &r);
    if (rc)
        return rc;
    fprintf(out, "%-24s %-20s %s\n", "NAME", "CREATED", "SCOPE");
    for (int i = 0; i < PQntuples(r); i++) {
        const char *names = PQgetvalue(r, i, 3);
        long long gone = atoll(PQgetvalue(r, i, 4));

        fprintf(out, "%-24s %-20s ", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
        if (PQgetvalue(r, i, 2)[0] == 't')
            fprintf(out, "all sources\n");
        else if (gone > 0)
            fprintf(out, "%s%s(%lld removed source%s)\n", names, names[0] ? " " : "", gone,
                    gone == 1 ? "" : "s");
        else
            fprintf(out, "%s\n", names);
    }
    PQclear(r);
    return 0;
}

/* The rows of one read-token query (id, name, hex hash, all, comma-separated ids)
 * appended to *rows (*n of them, grown). 0, SL_ENOMEM, or SL_ENOTFOUND when the table
 * does not exist (undefined_table), SL_EDB. */
static int load_token_rows(struct pg_conn *c, const char *sql, struct sl_read_token_row **rows,
                           size_t *n)
{
    PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0);
    struct sl_read_token_row *v;
    int nt;

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "42P01") == 0) {
            PQclear(r);
            return SL_ENOTFOUND;
        }
        log_pg("read token load failed", c, r);
        PQclear(r);
        return SL_EDB;
    }
    nt = PQntuples(r);
    v = realloc(*rows, (*n + (size_t)nt + 1) * sizeof(*v));
    if (v == NULL) {
        PQclear(r);
        return SL_ENOMEM;
    }
    *rows = v;
    memset(v + *n, 0, ((size_t)nt + 1) * sizeof(*v));
    for (int i = 0; i < nt; i++) {
        struct sl_read_token_row *t = &v[*n];
        const char *hh = PQgetvalue(r, i, 2), *p = PQgetvalue(r, i, 4);
        size_t k = 0;

        t->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        snprintf(t->name, sizeof(t->name), "%s", PQgetvalue(r, i, 1));
        unhex_hash(hh, t->token_hash);
        t->all = PQgetvalue(r, i, 3)[0] == 't';
        (*n)++;
        if (*p) {
            size_t cnt = 1;
            for (const char *q = p; *q; q++)
                cnt += *q == ',';
            t->source_ids = malloc(cnt * sizeof(int64_t));
            if (t->source_ids == NULL) {
                PQclear(r);
                return SL_ENOMEM;
            }
            while (*p && k < cnt) {
                char *end;
                t->source_ids[k++] = strtoll(p, &end, 10);
                p = *end == ',' ? end + 1 : end;
            }
        }
        t->n_sources = k;
    }
    PQclear(r);
    return 0;
}

int sl_db_load_read_tokens(struct pg_conn *c, struct sl_read_token_row **rows, size_t *n)
{
    struct sl_read_token_row *v = NULL;
    size_t nv = 0;
    int rc;

    *rows = NULL;
    *n = 0;
    /* undefined_table: a server newer than the schema serves ingest until migrate. */
    rc = load_token_rows(c,
                         "SELECT id, name, encode(token_hash, 'hex'), all_sources, "
                         "array_to_string(ARRAY(SELECT DISTINCT unnest(source_ids) "
                         "ORDER BY 1), ',') FROM read_tokens ORDER BY id",
                         &v, &nv);
    /* The web viewer's sessions: each a second secret of its token, with its scope
     * (docs/viewer.md); expired ones are not loaded (sign-in deletes them). */
    if (rc == 0)
        rc = load_token_rows(c,
                             "SELECT t.id, t.name, encode(w.session_hash, 'hex'), t.all_sources, "
                             "array_to_string(ARRAY(SELECT DISTINCT unnest(t.source_ids) "
                             "ORDER BY 1), ',') FROM web_sessions w JOIN read_tokens t "
                             "ON t.id = w.token_id WHERE w.expires_at > now() ORDER BY t.id",
                             &v, &nv);
    if (rc == SL_ENOTFOUND)
        rc = 0;
    if (rc) {
        sl_read_token_rows_free(v, nv);
        return rc;
    }
    *rows = v;
    *n = nv;
    return 0;
}

void sl_db_partition_name(int64_t us, char out[16])
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 16, "logs_%Y%m%d", &tm);
}

int sl_db_ensure_partitions(struct pg_conn *c, int64_t from_us, int days)
{
    for (int d = 0; d < days; d++) {
        int64_t us = from_us + (int64_t)d * 86400 * 1000000LL;
        time_t t = (time_t)(us / 1000000), t0;
        struct tm tm;
        char name[16], lo[32], hi[32], sql[256];
        PGresult *r;

        gmtime_r(&t, &tm);
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        t0 = timegm(&tm);
        strftime(lo, sizeof(lo), "%Y-%m-%d 00:00:00+00", &tm);
        t0 += 86400;
        gmtime_r(&t0, &tm);
        strftime(hi, sizeof(hi), "%Y-%m-%d 00:00:00+00", &tm);
        sl_db_partition_name(us, name);
        snprintf(sql, sizeof(sql),
                 "CREATE TABLE IF NOT EXISTS %s PARTITION OF logs FOR VALUES FROM ('%s') TO ('%s')",
                 name, lo, hi);
        r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            /* Another node may have created it between our check and create. */
            const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            if (state == NULL || (strcmp(state, "42P07") != 0 && strcmp(state, "23505") != 0)) {
                log_pg("partition create failed", c, r);
                PQclear(r);
                return SL_EDB;
            }
        }
        PQclear(r);
    }
    return 0;
}

int sl_db_retention_drop(struct pg_conn *c, long long *dropped)
{
    PGresult *r = NULL;
    int rc;

    *dropped = 0;
    /* Whole days past every source's retention are dropped: the day's partition of logs
     * and of log_packs (compaction, docs/search.md), named ..._YYYYMMDD. A day D ends at
     * D + 1 00:00 UTC, so it is past N days of retention once D + 1 <= today - N
     * (D < today - N). */
    rc = sl_db_exec(c, "retention query failed",
                    "SELECT to_char(d, 'YYYYMMDD'), to_regclass('logs_' || to_char(d, 'YYYYMMDD')) "
                    "IS NOT NULL, to_regclass('log_packs_' || to_char(d, 'YYYYMMDD')) IS NOT NULL "
                    "FROM (SELECT DISTINCT to_date(substring(c.relname FROM '([0-9]{8})$'), "
                    "'YYYYMMDD') AS d FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent IN ('logs'::regclass, 'log_packs'::regclass) "
                    "AND c.relname ~ '^(logs|log_packs)_[0-9]{8}$') x "
                    "WHERE d < (now() AT TIME ZONE 'UTC')::date "
                    "  - (SELECT coalesce(max(retention_days), 7) FROM sources) "
                    "ORDER BY 1",
                    0, NULL, &r);
    if (rc)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *day = PQgetvalue(r, i, 0);
        bool has_logs = PQgetvalue(r, i, 1)[0] == 't', has_packs = PQgetvalue(r, i, 2)[0] == 't';
        char sql[1024];
        PGresult *k = NULL;
        bool keep;

        /* An archived source's rows are archived before they go, hour by hour
         * (sl_archive_retention_step); a restored day is held. Either keeps the day. */
        char a[256] = "false", b[256] = "false";
        if (has_logs)
            snprintf(a, sizeof(a), "EXISTS (SELECT 1 FROM logs_%s WHERE source_id IN "
                     "(SELECT id FROM sources WHERE archive IS NOT NULL))", day);
        if (has_packs)
            snprintf(b, sizeof(b), "EXISTS (SELECT 1 FROM log_packs_%s WHERE source_id IN "
                     "(SELECT id FROM sources WHERE archive IS NOT NULL))", day);
        snprintf(sql, sizeof(sql),
                 "SELECT %s OR %s OR EXISTS (SELECT 1 FROM archive_holds WHERE "
                 "day = to_date('%s', 'YYYYMMDD') AND until > now())",
                 a, b, day);
        if (sl_db_exec(c, "retention query failed", sql, 0, NULL, &k))
            continue;
        keep = PQgetvalue(k, 0, 0)[0] == 't';
        PQclear(k);
        if (keep)
            continue;
        /* DROP takes an ACCESS EXCLUSIVE lock: a short lock_timeout gives up (and retries
         * next round) rather than queue the writer's COPY behind a long search. */
        snprintf(sql, sizeof(sql), "SET lock_timeout = '2s'; DROP TABLE IF EXISTS logs_%s, "
                 "log_packs_%s; RESET lock_timeout", day, day);
        if (sl_db_exec(c, "partition drop failed", sql, 0, NULL, NULL) == 0) {
            (*dropped)++;
            sl_info("partition dropped", "day=%s", day);
            /* and its day and hour levels (a failure leaves rows no block points at: the
             * next drop of a later day does not retry them, but a search never reads
             * them either) */
            sl_db_levels_drop_day(c, "day levels delete failed", day);
        } else
            PQclear(PQexec(c, "RESET lock_timeout"));
    }
    PQclear(r);
    return 0;
}

int sl_db_retention_sources(struct pg_conn *c, struct sl_retention_job **jobs, size_t *n)
{
    PGresult *r = NULL;
    struct sl_retention_job *v;
    int rc = sl_db_exec(c, "retention query failed",
                        "SELECT id, retention_days, name, coalesce(archive, '') FROM sources "
                        "WHERE retention_days < (SELECT max(retention_days) FROM sources) "
                        "OR archive IS NOT NULL ORDER BY id",
                        0, NULL, &r);

    *jobs = NULL;
    *n = 0;
    if (rc)
        return rc;
    v = calloc((size_t)PQntuples(r) + 1, sizeof(*v));
    if (v == NULL) {
        PQclear(r);
        return SL_ENOMEM;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        v[i].source_id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        v[i].days = atoi(PQgetvalue(r, i, 1));
        snprintf(v[i].name, sizeof(v[i].name), "%s", PQgetvalue(r, i, 2));
        snprintf(v[i].archive, sizeof(v[i].archive), "%s", PQgetvalue(r, i, 3));
    }
    *n = (size_t)PQntuples(r);
    *jobs = v;
    PQclear(r);
    return 0;
}

int sl_db_wal_position(struct pg_conn *c, uint64_t *out)
{
    PGresult *r = NULL;
    int rc = sl_db_exec(c, "wal position failed",
                        "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn", 0, NULL, &r);

    if (rc)
        return rc;
    *out = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

int sl_db_retention_batch(struct pg_conn *c, const struct sl_retention_job *job, int limit,
                          long long *deleted)
{
    char sid[24], days[16], lim[16];
    const char *vals[3] = {sid, days, lim};
    PGresult *r = NULL;
    int rc;

    *deleted = 0;
    snprintf(sid, sizeof(sid), "%lld", (long long)job->source_id);
    snprintf(days, sizeof(days), "%d", job->days);
    snprintf(lim, sizeof(lim), "%d", limit > 0 ? limit : 1);
    /* One bounded statement: the received_at of the limit-th oldest row past the
     * retention (read from the (source_id, received_at) index) is the batch's upper
     * bound, so the DELETE touches about `limit` rows and holds its locks briefly. Rows
     * sharing that exact timestamp go in the same batch. */
    rc = sl_db_exec(c, "retention delete failed",
                    "WITH cut AS (SELECT now() - make_interval(days => $2::int) AS t), "
                    "edge AS (SELECT max(received_at) AS t FROM (SELECT received_at FROM logs "
                    "  WHERE source_id = $1::bigint AND received_at < (SELECT t FROM cut) "
                    "  ORDER BY received_at LIMIT $3::int) x) "
                    "DELETE FROM logs WHERE source_id = $1::bigint "
                    "AND received_at < (SELECT t FROM cut) AND received_at <= (SELECT t FROM edge)",
                    3, vals, &r);
    if (rc)
        return rc;
    *deleted = atoll(PQcmdTuples(r));
    PQclear(r);
    if (*deleted >= (limit > 0 ? limit : 1))
        return 0;
    /* then the packed rows past the retention (docs/search.md "Compacted days"): a pack
     * wholly past goes, the one across the line is rewritten; a few packs a call */
    rc = sl_db_exec(c, "retention delete failed",
                    "SELECT sl_packs_delete($1::bigint, '-infinity', now() - make_interval(days "
                    "=> $2::int), $3::int / 256 + 1)",
                    3, vals, &r);
    if (rc)
        return rc;
    *deleted += atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

int sl_db_retention_finish(struct pg_conn *c)
{
    int rc;

    /* Token-filter blocks (docs/search.md) whose newest row is past their source's
     * retention, and every block of a removed source. A block partly inside the retention
     * stays until its newest row ages out. */
    /* A packed block's rows are its pack: both go (never an archived source's, whose
     * archive step removes them once the hour is archived). */
    rc = sl_db_exec(c, "retention blocks failed",
                    "WITH gone AS (DELETE FROM log_blocks b WHERE NOT EXISTS (SELECT 1 FROM sources s "
                    "WHERE s.id = b.source_id "
                    "AND b.max_received >= now() - make_interval(days => s.retention_days)) "
                    "AND NOT (b.packed AND EXISTS (SELECT 1 FROM sources s WHERE s.id = "
                    "b.source_id AND s.archive IS NOT NULL)) "
                    /* blocks of a restored day stay while it is held */
                    "AND NOT EXISTS (SELECT 1 FROM archive_holds h WHERE h.source_id = "
                    "b.source_id AND h.until > now() "
                    "AND b.max_received >= h.day::timestamp AT TIME ZONE 'UTC' "
                    "AND b.min_received < (h.day + 1)::timestamp AT TIME ZONE 'UTC') "
                    "RETURNING b.source_id, b.min_id, b.packed, b.min_received) "
                    "DELETE FROM log_packs p USING gone g WHERE g.packed AND "
                    "p.source_id = g.source_id AND p.day = (g.min_received AT TIME ZONE 'UTC')"
                    "::date AND p.min_id = g.min_id",
                    0, NULL, NULL);
    if (rc)
        return rc;
    /* The commit log (the live tail's order) ages out with the rows it lists. */
    rc = sl_db_exec(c, "retention commits failed",
                    "DELETE FROM log_commits k WHERE NOT EXISTS (SELECT 1 FROM sources s "
                    "WHERE s.id = k.source_id "
                    "AND k.max_received >= now() - make_interval(days => s.retention_days))",
                    0, NULL, NULL);
    if (rc)
        return rc;
    /* Rows of a removed source age out with their partitions. */
    return sl_db_exec(c, "frame prune failed",
                      "DELETE FROM ingest_frames WHERE seen_at < now() - interval '1 day'", 0,
                      NULL, NULL);
}

int sl_db_source_set_retention(struct pg_conn *c, const char *name, int days)
{
    char d[16];
    const char *vals[2] = {name, d};

    snprintf(d, sizeof(d), "%d", days);
    return change_named(c, "source set failed",
                        "UPDATE sources SET retention_days = $2::int WHERE name = $1 RETURNING id",
                        2, vals);
}

int sl_db_source_set_archive(struct pg_conn *c, const char *name, const char *dest)
{
    const char *vals[2] = {name, dest && dest[0] ? dest : NULL};
    return change_named(c, "source set failed",
                        "UPDATE sources SET archive = $2 WHERE name = $1 RETURNING id", 2, vals);
}

int sl_db_source_set_disk_evict(struct pg_conn *c, const char *name, bool evict)
{
    const char *vals[2] = {name, evict ? "true" : "false"};
    return change_named(c, "source set failed",
                        "UPDATE sources SET disk_evict = $2::boolean WHERE name = $1 RETURNING id",
                        2, vals);
}

/* ---------------------------------------------------------------- the coarse levels */

#define LEVEL_FETCH 5000

int sl_db_level_read(struct pg_conn *c, const char *what, const char *select, int n,
                     const char *const *vals, struct sl_dayfilter *df, long long *nrows)
{
    struct sl_buf sql, extra;
    int rc;

    *nrows = 0;
    sl_buf_init(&sql, 1u << 16);
    sl_buf_init(&extra, (SL_FIELDS_CANON_MAX + 2) * SL_JSON_MAX_BYTES); /* as the writer */
    if (sl_buf_addf(&sql, "DECLARE sl_level NO SCROLL CURSOR FOR %s", select) ||
        sl_buf_addc(&sql, '\0')) {
        rc = SL_ENOMEM;
        goto out;
    }
    if ((rc = sl_db_exec(c, what, sql.p, n, vals, NULL)))
        goto out;
    for (;;) {
        PGresult *r = NULL;
        int nt;
        if ((rc = sl_db_exec(c, what, "FETCH 5000 FROM sl_level", 0, NULL, &r)))
            goto out;
        nt = PQntuples(r);
        for (int i = 0; i < nt; i++)
            sl_dayfilter_add_line(df, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0),
                                  PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1),
                                  (size_t)PQgetlength(r, i, 1), &extra);
        PQclear(r);
        *nrows += nt;
        if (nt < LEVEL_FETCH)
            break;
    }
    rc = sl_db_exec(c, what, "CLOSE sl_level", 0, NULL, NULL);
out:
    sl_buf_free(&sql);
    sl_buf_free(&extra);
    return rc;
}

int sl_db_level_write(struct pg_conn *c, const char *what, const char *insert_sql, int n,
                      const char *const *vals, struct sl_dayfilter *df)
{
    struct sl_buf sl, nb, hex;
    const char *v[16];
    int rc;

    if (n < 0 || n > (int)(sizeof(v) / sizeof(v[0])) - 3)
        return SL_EINVAL;
    sl_buf_init(&sl, 1u << 12);
    sl_buf_init(&nb, 1u << 12);
    sl_buf_init(&hex, (size_t)SL_DAYFILTER_SLICES * (SL_BLOOM_MAX_BITS / 4 + 4));
    if ((rc = sl_dayfilter_arrays(df, &sl, &nb, &hex)))
        goto out;
    for (int i = 0; i < n; i++)
        v[i] = vals[i];
    v[n] = sl.p;
    v[n + 1] = nb.p;
    v[n + 2] = hex.p;
    rc = sl_db_exec(c, what, insert_sql, n + 3, v, NULL);
out:
    sl_buf_free(&sl);
    sl_buf_free(&nb);
    sl_buf_free(&hex);
    return rc;
}

void sl_db_levels_drop_day(struct pg_conn *c, const char *what, const char *day)
{
    const char *v[1] = {day};

    if (sl_db_exec(c, what, "DELETE FROM log_day_filters WHERE day = $1::date", 1, v, NULL) ||
        sl_db_exec(c, what,
                   "DELETE FROM log_hour_filters WHERE hour >= $1::date::timestamp AT TIME ZONE "
                   "'UTC' AND hour < ($1::date + 1)::timestamp AT TIME ZONE 'UTC'",
                   1, v, NULL))
        sl_warn("day and hour levels left", "day=%s", day);
}
