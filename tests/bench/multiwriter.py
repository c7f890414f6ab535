#!/usr/bin/python3
"""Writers into one PostgreSQL (docs/scaling.md): N connections, each committing
transactions of BATCH rows into `logs` the way the writer does (a batch of stored rows,
grouped by source, inserted again with new ids from logs_id_block_seq blocks and
received now; INSERT ... SELECT on the server, so the client costs nothing), with or
without the commit
stamp (sl_commit_stamp: the commit-order lock, a log_commits row per source, NOTIFY).

    multiwriter.py DATABASE_URL SECONDS WRITERS stamp|nostamp [BATCH]

Prints one line: `writers=N stamp=yes rows=R seconds=S rows_per_s=X commits_per_s=Y
stamp_to_commit_ms=M share_of_time=F`: M the mean time from the stamp (or, without it,
from the end of the INSERT) to the end of COMMIT, the time the commit-order lock is held
with the stamp; F the sum of those times over the wall time (with the stamp: how busy the
lock is, 1.0 = always held)."""
import sys
import threading
import time

import psycopg2

url, seconds, writers, mode = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
batch = int(sys.argv[5]) if len(sys.argv) > 5 else 10000
stamp = mode == "stamp"
rows = [0] * writers
commits = [0] * writers
held = [0.0] * writers  # seconds from the stamp to the end of COMMIT: the lock is held


def writer(k):
    c = psycopg2.connect(url)
    cur = c.cursor()
    # one batch of stored rows, grouped by source as the writer COPYs them, staged once
    cur.execute("CREATE TEMP TABLE b AS SELECT row_number() OVER (ORDER BY source_id, id) - 1 "
                "AS r, * FROM (SELECT * FROM logs ORDER BY id DESC OFFSET %s LIMIT %s) x",
                (k * batch, batch))
    cur.execute("SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
                "WHERE attrelid = 'logs'::regclass AND attnum > 0 AND NOT attisdropped "
                "AND attname NOT IN ('id', 'received_at')")
    cols = cur.fetchone()[0]
    c.commit()
    nxt = end = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if nxt + batch > end:
            cur.execute("SELECT nextval('logs_id_block_seq')")
            nxt = cur.fetchone()[0] << 20
            end = nxt + (1 << 20)
            c.commit()
        cur.execute(f"INSERT INTO logs (id, received_at, {cols}) SELECT %s + r, now(), {cols} "
                    "FROM b", (nxt,))
        n = cur.rowcount
        t_stamp = time.monotonic()
        if stamp:
            cur.execute("SELECT sl_commit_stamp('bench', array_agg(s), array_agg(lo), "
                        "array_agg(hi), array_agg(u), array_agg(u), array_agg(n)) FROM "
                        "(SELECT source_id AS s, %s + min(r) AS lo, %s + max(r) AS hi, "
                        "count(*)::int AS n, (extract(epoch FROM now()) * 1e6)::bigint AS u "
                        "FROM b GROUP BY source_id) g", (nxt, nxt))
        c.commit()
        held[k] += time.monotonic() - t_stamp
        nxt += n
        rows[k] += n
        commits[k] += 1
    c.close()


t0 = time.monotonic()
ts = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
for t in ts:
    t.start()
for t in ts:
    t.join()
took = time.monotonic() - t0
print(f"writers={writers} stamp={'yes' if stamp else 'no'} rows={sum(rows)} seconds={took:.1f} "
      f"rows_per_s={sum(rows) / took:.0f} commits_per_s={sum(commits) / took:.1f} "
      f"stamp_to_commit_ms={1000 * sum(held) / max(1, sum(commits)):.1f} "
      f"share_of_time={sum(held) / took:.3f}")
