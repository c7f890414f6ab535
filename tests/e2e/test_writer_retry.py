"""The writer's retry after a failed batch loses no frame (found while splitting writer.c).

When the batch's ingest_frames INSERT itself failed while the connection stayed up (a
statement timeout, a lock timeout, a trigger), every frame with a Logplex-Frame-Id kept
the "duplicate until PostgreSQL says new" mark of the failed attempt. The entry-by-entry
retry then never asked PostgreSQL again, skipped those lines and counted them as
duplicates: lines acknowledged with 204 were never stored. Here a trigger refuses the
first ingest_frames INSERT (a sequence counts calls: it is not rolled back), and every
line must be stored once, none counted as a duplicate.
"""

from conftest import frame_body, heroku_line


def test_failed_dedupe_insert_is_asked_again(db, sluice):
    db.query("CREATE SEQUENCE IF NOT EXISTS e2e_fail_once_seq")
    db.query("""
        CREATE OR REPLACE FUNCTION e2e_fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('e2e_fail_once_seq') = 1 THEN
                RAISE EXCEPTION 'e2e: ingest_frames insert refused once';
            END IF;
            RETURN NULL;
        END $$""")
    db.query("CREATE TRIGGER e2e_fail_once BEFORE INSERT ON ingest_frames "
             "FOR EACH STATEMENT EXECUTE FUNCTION e2e_fail_once()")
    try:
        s = sluice()
        src = s.add_source()
        body = frame_body([heroku_line(f"retry line {i}") for i in range(20)])
        r = s.post(src, body, headers={"Logplex-Frame-Id": "frame-retry-1",
                                       "Logplex-Msg-Count": "20"})
        assert r.status == 204, r
        rows = db.wait_rows(src.id, 20, timeout=30)
        assert sorted(r["message"].strip() for r in rows) == \
            sorted(f"retry line {i}" for i in range(20))
        assert db.query("SELECT last_value FROM e2e_fail_once_seq")[0]["last_value"] >= 2, \
            "the trigger never refused an insert: the test did not exercise the retry"
        assert "frame de-duplication failed" in s.log_tail(400)
        assert s.metric("sluice_duplicate_lines_total") == 0
    finally:
        db.query("DROP TRIGGER IF EXISTS e2e_fail_once ON ingest_frames")
        db.query("DROP FUNCTION IF EXISTS e2e_fail_once()")
        db.query("DROP SEQUENCE IF EXISTS e2e_fail_once_seq")
