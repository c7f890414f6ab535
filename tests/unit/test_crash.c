/* Unit tests for drain/crash.c (include/sluice/crash.h): real traces of each runtime
 * (Python, Go, Ruby/Rails, Node, JVM) and Heroku's platform crashes through the
 * assembler, with the lines around them; chains and their Sentry order; frames and in_app;
 * the closing rules (final line, gap, caps); look-alikes that must not become crashes;
 * Unicode and very long lines; the fingerprint; the event JSON (parsed back with cJSON);
 * the envelope; DSN, auth header and rate-limit tables; the anchors; and every crash of
 * the stream corpus (tests/fixtures/corpus, or $SLUICE_CORPUS) as exactly one crash. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sluice/crash.h"
#include "sluice/utf8.h"

#define MAXC 16

struct run {
    struct sl_crash *c[MAXC];
    size_t n;
};

static void run_free(struct run *r)
{
    for (size_t i = 0; i < r->n; i++)
        sl_crash_free(r->c[i]);
    r->n = 0;
}

static void take_all(struct sl_crash_asm *a, struct run *r)
{
    struct sl_crash *c;
    while ((c = sl_crash_asm_take(a)) != NULL) {
        assert_true(r->n < MAXC);
        r->c[r->n++] = c;
    }
}

/* Feed text (lines separated by '\n') as one procid's lines: line i has id i + 1 and
 * time i * step_us; then finish. */
static void run_lim(const char *text, int64_t step_us, const struct sl_crash_limits *lim,
                    struct run *r)
{
    struct sl_crash_asm *a = sl_crash_asm_new(lim);
    int64_t i = 0;
    const char *p = text;

    assert_non_null(a);
    memset(r, 0, sizeof(*r));
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        struct sl_crash_line ln = {i + 1, i * step_us, {p, len}};
        size_t done = 99;
        int rc = sl_crash_asm_feed(a, &ln, &done);
        assert_true(rc >= 0);
        assert_int_equal((size_t)rc, done);
        take_all(a, r);
        i++;
        p = nl ? nl + 1 : p + len;
    }
    size_t done = 0;
    assert_true(sl_crash_asm_finish(a, &done) >= 0);
    take_all(a, r);
    assert_false(sl_crash_asm_open(a, NULL));
    sl_crash_asm_free(a);
}

static void run(const char *text, struct run *r)
{
    run_lim(text, 1000, NULL, r);
}

static const struct sl_crash_exc *last_exc(const struct sl_crash *c)
{
    assert_true(c->nexcs > 0);
    return &c->excs[c->nexcs - 1];
}

static void frame_is(const struct sl_crash_frame *f, const char *filename, const char *function,
                     int lineno, bool in_app)
{
    if (filename)
        assert_string_equal(f->filename, filename);
    else
        assert_null(f->filename);
    assert_string_equal(f->function, function);
    assert_int_equal(f->lineno, lineno);
    assert_int_equal(f->in_app, in_app);
}

/* ---- Python ------------------------------------------------------------------------- */

static const char PY_TB[] = "INFO Booting worker with pid: 12\n"
                            "Traceback (most recent call last):\n"
                            "  File "
                            "\"/app/.heroku/python/lib/python3.12/site-packages/django/core/"
                            "handlers/exception.py\", line 55, in inner\n"
                            "    response = get_response(request)\n"
                            "  File \"/app/validations/views.py\", line 118, in run_validation\n"
                            "    result = engine.validate(submission)\n"
                            "  File \"/app/validations/engine.py\", line 42, in validate\n"
                            "    schema = self.schemas[submission.kind]\n"
                            "             ~~~~~~~~~~~~^^^^^^^^^^^^^^^^^\n"
                            "KeyError: 'energyplus'\n"
                            "\"GET /api/v1/validations HTTP/1.1\" 200 512\n";

static void test_python_basic(void **state)
{
    struct run r;
    (void)state;
    run(PY_TB, &r);
    assert_int_equal(r.n, 1);
    const struct sl_crash *c = r.c[0];
    assert_int_equal(c->lang, SL_LANG_PYTHON);
    assert_int_equal(c->nexcs, 1);
    assert_string_equal(c->excs[0].type, "KeyError");
    assert_string_equal(c->excs[0].value, "'energyplus'");
    assert_string_equal(c->excs[0].module, "builtins");
    assert_int_equal(c->excs[0].nframes, 3);
    frame_is(&c->excs[0].frames[0], "django/core/handlers/exception.py", "inner", 55, false);
    assert_string_equal(c->excs[0].frames[0].module, "django.core.handlers.exception");
    frame_is(&c->excs[0].frames[1], "validations/views.py", "run_validation", 118, true);
    frame_is(&c->excs[0].frames[2], "validations/engine.py", "validate", 42, true);
    assert_string_equal(c->excs[0].frames[2].abs_path, "/app/validations/engine.py");
    assert_string_equal(c->excs[0].frames[2].module, "validations.engine");
    /* the lines before and after are not part of it */
    assert_int_equal(c->first_id, 2);
    assert_int_equal(c->last_id, 10);
    assert_int_equal(c->nlines, 9);
    assert_false(c->truncated);
    assert_int_equal(strlen(c->fingerprint), 64);
    run_free(&r);
}

static void test_python_chain(void **state)
{
    static const char text[] =
        "Traceback (most recent call last):\n"
        "  File \"/srv/tool/main.py\", line 5, in <module>\n"
        "    main()\n"
        "  File \"/srv/tool/lib/db.py\", line 9, in connect\n"
        "    raise ConnectionError(\"x\")\n"
        "ConnectionError: refused\n"
        "\n"
        "The above exception was the direct cause of the following exception:\n"
        "\n"
        "Traceback (most recent call last):\n"
        "  File \"/srv/tool/main.py\", line 7, in <module>\n"
        "    raise app.errors.AppError(\"wrapped\") from e\n"
        "  File \"/usr/lib/python3.11/json/decoder.py\", line 337, in decode\n"
        "    obj, end = self.raw_decode(s, idx=_w(s, 0).end())\n"
        "app.errors.AppError: wrapped\n"
        "\n"
        "During handling of the above exception, another exception occurred:\n"
        "\n"
        "Traceback (most recent call last):\n"
        "  File \"/srv/tool/main.py\", line 9, in <module>\n"
        "    sys.exit(f())\n"
        "  File \"/srv/tool/main.py\", line 3, in f\n"
        "    return g()\n"
        "  File \"/srv/tool/main.py\", line 3, in f\n"
        "    return g()\n"
        "  [Previous line repeated 996 more times]\n"
        "RecursionError: maximum recursion depth exceeded\n"
        "[2026-11-21 10:00:00 +0000] [4] [INFO] Worker exiting (pid: 4)\n";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 1);
    const struct sl_crash *c = r.c[0];
    assert_int_equal(c->nexcs, 3);
    /* root cause first, as Python prints it */
    assert_string_equal(c->excs[0].type, "ConnectionError");
    assert_string_equal(c->excs[1].type, "AppError");
    assert_string_equal(c->excs[1].module, "app.errors");
    assert_string_equal(c->excs[2].type, "RecursionError");
    /* F10: "[Previous line repeated 996 more times]" is 996 more copies of the frame */
    assert_false(c->excs[2].frames_omitted);
    assert_false(c->excs[0].frames_omitted);
    /* the main script's directory is sys.path[0]; its frames are __main__ */
    frame_is(&c->excs[0].frames[0], "main.py", "<module>", 5, true);
    assert_string_equal(c->excs[0].frames[0].module, "__main__");
    frame_is(&c->excs[0].frames[1], "lib/db.py", "connect", 9, true);
    assert_string_equal(c->excs[0].frames[1].module, "lib.db");
    frame_is(&c->excs[1].frames[1], "json/decoder.py", "decode", 337, false);
    assert_int_equal(c->excs[2].nframes, 3 + 996);
    frame_is(&c->excs[2].frames[3 + 995], "main.py", "f", 3, true);
    frame_is(&c->excs[2].frames[0], "main.py", "<module>", 9, true);
    assert_int_equal(c->last_id, 27);
    run_free(&r);
}

static void test_python_celery_syntax(void **state)
{
    static const char text[] =
        "[2026-11-21 10:00:00,000: ERROR/ForkPoolWorker-1] Task validations.tasks.run[0b1c-22] "
        "raised unexpected: KeyError('energyplus')\n"
        "Traceback (most recent call last):\n"
        "  File \"/app/.heroku/python/lib/python3.12/site-packages/celery/app/trace.py\", line "
        "451, in trace_task\n"
        "    R = retval = fun(*args, **kwargs)\n"
        "  File \"/app/validations/tasks.py\", line 8, in run\n"
        "    return kinds[kind]\n"
        "KeyError: 'energyplus'\n"
        "[2026-11-21 10:00:01,000: ERROR/ForkPoolWorker-2] Task billing.tasks.charge[99] raised "
        "unexpected: ValueError('no card')\n"
        "[2026-11-21 10:00:01,000: INFO/MainProcess] Task billing.tasks.other[98] received\n"
        "  File \"/app/bad.py\", line 3\n"
        "    x = = 1\n"
        "      ^\n"
        "SyntaxError: invalid syntax\n";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 3);
    assert_string_equal(last_exc(r.c[0])->type, "KeyError");
    assert_int_equal(last_exc(r.c[0])->nframes, 2);
    assert_int_equal(r.c[0]->first_id, 1);
    assert_int_equal(r.c[0]->last_id, 7);
    /* a Celery failure without a traceback still names the exception */
    assert_string_equal(last_exc(r.c[1])->type, "ValueError");
    assert_string_equal(last_exc(r.c[1])->value, "no card");
    assert_int_equal(r.c[1]->nlines, 1);
    /* the main script's SyntaxError has no Traceback line; its value is str(e) */
    assert_string_equal(last_exc(r.c[2])->type, "SyntaxError");
    assert_string_equal(last_exc(r.c[2])->value, "invalid syntax (bad.py, line 3)");
    assert_int_equal(r.c[2]->first_id, 10);
    run_free(&r);
}

static void test_python_exception_group(void **state)
{
    static const char text[] = "  + Exception Group Traceback (most recent call last):\n"
                               "  |   File \"/app/jobs.py\", line 12, in <module>\n"
                               "  |     run()\n"
                               "  |   File \"/app/jobs.py\", line 9, in run\n"
                               "  |     raise ExceptionGroup(\"2 jobs failed\", errors)\n"
                               "  | ExceptionGroup: 2 jobs failed (2 sub-exceptions)\n"
                               "  +-+---------------- 1 ----------------\n"
                               "    | ValueError: bad row\n"
                               "    +---------------- 2 ----------------\n"
                               "    | KeyError: 'id'\n"
                               "    +------------------------------------\n"
                               "worker exited\n";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 1);
    const struct sl_crash_exc *e = last_exc(r.c[0]);
    assert_string_equal(e->type, "ExceptionGroup");
    assert_string_equal(e->value, "2 jobs failed (2 sub-exceptions)");
    assert_int_equal(e->nframes, 2);
    frame_is(&e->frames[1], "jobs.py", "run", 9, true);
    assert_int_equal(r.c[0]->last_id, 11);
    run_free(&r);
}

static void test_python_lookalikes(void **state)
{
    /* A Traceback line followed by nothing trace-like, a bare exception-looking line: no
     * crash, and the real trace right after is still found whole. */
    static const char text[] = "Traceback (most recent call last):\n"
                               "user 42 logged in\n"
                               "KeyError: 'not after a traceback'\n"
                               "Traceback (most recent call last):\n"
                               "  File \"/app/x.py\", line 1, in <module>\n"
                               "    f()\n"
                               "ZeroDivisionError: division by zero\n";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 1);
    assert_string_equal(last_exc(r.c[0])->type, "ZeroDivisionError");
    assert_int_equal(r.c[0]->first_id, 4);
    run_free(&r);
}

/* ---- Go ----------------------------------------------------------------------------- */

static const char GO_PANIC[] =
    "{\"level\":\"info\",\"msg\":\"request\",\"path\":\"/search\",\"status\":200,\"dur_ms\":14}\n"
    "panic: runtime error: invalid memory address or nil pointer dereference\n"
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x6b1c2e]\n"
    "\n"
    "goroutine 57 [running]:\n"
    "github.com/acme/packfinderz/internal/checkout.(*Service).Place(0xc0001a2000, {0x9a1f40, "
    "0xc00031e0c0})\n"
    "\t/app/internal/checkout/service.go:88 +0x2e\n"
    "github.com/acme/packfinderz/internal/api.(*Handler).Checkout(0xc000120f00, {0x9a0e20, "
    "0xc0003a6000}, 0xc00039e200)\n"
    "\t/app/internal/api/checkout.go:41 +0x1b4\n"
    "net/http.HandlerFunc.ServeHTTP(0x0?, {0x9a0e20?, 0xc0003a6000?}, 0x0?)\n"
    "\t/usr/local/go/src/net/http/server.go:2136 +0x29\n"
    "created by net/http.(*Server).Serve in goroutine 1\n"
    "\t/usr/local/go/src/net/http/server.go:3285 +0x4b4\n"
    "exit status 2\n"
    "agent heartbeat ok\n";

static void test_go_panic(void **state)
{
    struct run r;
    (void)state;
    run(GO_PANIC, &r);
    assert_int_equal(r.n, 1);
    const struct sl_crash *c = r.c[0];
    assert_int_equal(c->lang, SL_LANG_GO);
    const struct sl_crash_exc *e = last_exc(c);
    assert_string_equal(e->value,
                        "runtime error: invalid memory address or nil pointer dereference");
    /* oldest call first; "created by" is no frame of the panic */
    assert_int_equal(e->nframes, 3);
    frame_is(&e->frames[0], NULL, "HandlerFunc.ServeHTTP", 2136, false);
    assert_string_equal(e->frames[0].module, "net/http");
    assert_string_equal(e->frames[0].abs_path, "/usr/local/go/src/net/http/server.go");
    frame_is(&e->frames[2], NULL, "(*Service).Place", 88, true);
    assert_string_equal(e->frames[2].module, "github.com/acme/packfinderz/internal/checkout");
    /* "exit status 2" ends it: the heartbeat after is not part of it */
    assert_int_equal(c->first_id, 2);
    assert_int_equal(c->last_id, 14);
    run_free(&r);
}

static void test_go_shapes(void **state)
{
    static const char text[] = "2026/11/21 10:00:00 handler panic: recovered and logged\n"
                               "panic: first [recovered]\n"
                               "\tpanic: boom\n"
                               "\n"
                               "goroutine 1 [running]:\n"
                               "main.main.func1()\n"
                               "\t/src/app/main.go:9 +0x1d\n"
                               "panic({0x4a1b20?, 0x5d3f40?})\n"
                               "\t/usr/lib/go-1.19/src/runtime/panic.go:890 +0x262\n"
                               "runtime.gopanic(0x1)\n"
                               "\t/usr/lib/go-1.19/src/runtime/panic.go:770 +0x132\n"
                               "main.worker(...)\n"
                               "\t/src/app/main.go:14\n"
                               "github.com/acme/app/vendor/github.com/lib/pq.(*conn).query(0x1)\n"
                               "\t/src/app/vendor/github.com/lib/pq/conn.go:1 +0x1\n"
                               "main.main()\n"
                               "\t/src/app/main.go:20 +0x85\n"
                               "\n"
                               "goroutine 7 [chan receive]:\n"
                               "main.other()\n"
                               "\t/src/app/main.go:30 +0x1\n"
                               "panic: word at the start of a normal line\n"
                               "and then nothing trace-like\n"
                               "fatal error: all goroutines are asleep - deadlock!\n"
                               "\n"
                               "goroutine 1 [chan receive]:\n"
                               "main.main()\n"
                               "\t/src/app/main.go:5 +0x2d\n";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 2);
    const struct sl_crash *c = r.c[0];
    assert_int_equal(c->nexcs, 2);
    assert_string_equal(c->excs[0].value, "first");
    assert_string_equal(c->excs[1].value, "boom");
    assert_string_equal(c->excs[1].type, "panic");
    const struct sl_crash_exc *e = &c->excs[1];
    /* runtime frames dropped, the first goroutine only */
    assert_int_equal(e->nframes, 4);
    frame_is(&e->frames[0], NULL, "main", 20, true);
    frame_is(&e->frames[1], NULL, "(*conn).query", 1, false); /* vendor */
    frame_is(&e->frames[2], NULL, "worker", 14, true);
    frame_is(&e->frames[3], NULL, "main.func1", 9, true);
    assert_int_equal(c->first_id, 2);
    assert_int_equal(c->last_id, 21);
    assert_string_equal(last_exc(r.c[1])->type, "fatal error");
    assert_string_equal(last_exc(r.c[1])->value, "all goroutines are asleep - deadlock!");
    assert_int_equal(r.c[1]->first_id, 24);
    run_free(&r);
}

/* ---- Ruby / Rails ------------------------------------------------------------------- */

static void test_ruby_uncaught(void **state)
{
    static const char text[] =
        "I, [2026-11-21T10:00:00.100 #4]  INFO -- : Started GET \"/users/5\"\n"
        "/app/app/models/user.rb:12:in 'User#full_name': undefined method 'upcase' for nil "
        "(NoMethodError)\n"
        "\tfrom /app/app/controllers/users_controller.rb:7:in 'UsersController#show'\n"
        "\tfrom "
        "/app/vendor/bundle/ruby/3.2.0/gems/actionpack-7.0.4/lib/action_controller/metal/"
        "basic_implicit_render.rb:6:in `send_action'\n"
        "\tfrom /usr/lib/ruby/3.2.0/benchmark.rb:311:in `realtime'\n"
        "\tfrom bin/rails:4:in `<main>'\n"
        "/app/lib/db.rb:2:in `connect': connection refused (Errno::ECONNREFUSED)\n"
        "\tfrom bin/rails:4:in `<main>'\n"
        "Puma starting in single mode...\n";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 1);
    const struct sl_crash *c = r.c[0];
    assert_int_equal(c->lang, SL_LANG_RUBY);
    assert_int_equal(c->nexcs, 2);
    /* Ruby prints the cause after: Sentry wants it first */
    assert_string_equal(c->excs[0].type, "Errno::ECONNREFUSED");
    assert_string_equal(c->excs[0].value, "connection refused");
    const struct sl_crash_exc *e = &c->excs[1];
    assert_string_equal(e->type, "NoMethodError");
    assert_string_equal(e->value, "undefined method 'upcase' for nil");
    assert_int_equal(e->nframes, 5);
    frame_is(&e->frames[0], "bin/rails", "<main>", 4, true);
    frame_is(&e->frames[1], "benchmark.rb", "realtime", 311, false);
    frame_is(&e->frames[2], "action_controller/metal/basic_implicit_render.rb", "send_action", 6,
             false);
    frame_is(&e->frames[3], "app/controllers/users_controller.rb", "show", 7, true);
    assert_string_equal(e->frames[3].module, "UsersController");
    frame_is(&e->frames[4], "app/models/user.rb", "full_name", 12, true);
    assert_string_equal(e->frames[4].abs_path, "/app/app/models/user.rb");
    assert_int_equal(c->first_id, 2);
    assert_int_equal(c->last_id, 8);
    run_free(&r);
}

static void test_rails_logger(void **state)
{
    static const char text[] =
        "I, [2026-11-21T10:00:00.100 #4]  INFO -- : [6c1e] Started GET \"/users/5\"\n"
        "F, [2026-11-21T10:00:00.123 #4] FATAL -- : [6c1e]   \n"
        "F, [2026-11-21T10:00:00.123 #4] FATAL -- : [6c1e] NoMethodError (undefined method `name' "
        "for nil:NilClass):\n"
        "F, [2026-11-21T10:00:00.123 #4] FATAL -- : [6c1e]   \n"
        "E, [2026-11-21T10:00:00.124 #5] ERROR -- : [77aa] another worker's line\n"
        "F, [2026-11-21T10:00:00.125 #4] FATAL -- : [6c1e] "
        "app/controllers/users_controller.rb:12:in `show'\n"
        "F, [2026-11-21T10:00:00.125 #4] FATAL -- : [6c1e] actionpack (7.0.4) "
        "lib/action_controller/metal/basic_implicit_render.rb:6:in `send_action'\n"
        "I, [2026-11-21T10:00:00.200 #4]  INFO -- : [9f00] Started GET \"/\"\n"
        "ActiveRecord::RecordNotFound (Couldn't find User with 'id'=5):\n"
        "  \n"
        "app/controllers/users_controller.rb:3:in 'UsersController#find'\n"
        "Completed 404 Not Found in 3ms\n";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 2);
    const struct sl_crash_exc *e = last_exc(r.c[0]);
    assert_string_equal(e->type, "NoMethodError");
    assert_string_equal(e->value, "undefined method `name' for nil:NilClass");
    assert_int_equal(e->nframes, 2);
    frame_is(&e->frames[0], "action_controller/metal/basic_implicit_render.rb", "send_action", 6,
             false);
    frame_is(&e->frames[1], "app/controllers/users_controller.rb", "show", 12, true);
    /* the other puma worker's line (#5) is not part of it, nor does it end it */
    assert_int_equal(r.c[0]->nlines, 4);
    assert_int_equal(r.c[0]->line_ids[2], 6);
    e = last_exc(r.c[1]);
    assert_string_equal(e->type, "ActiveRecord::RecordNotFound");
    assert_string_equal(e->value, "Couldn't find User with 'id'=5");
    assert_int_equal(e->nframes, 1);
    run_free(&r);
}

static void test_sidekiq(void **state)
{
    /* Sidekiq's error handler on Heroku: the class and message, then the backtrace in one
     * log call (its prefix on the first line only); another thread's lines in between
     * neither join nor end it */
    static const char text[] =
        "pid=4 tid=gq2 class=HardJob jid=b1 INFO: start\n"
        "pid=4 tid=gq2 class=HardJob jid=b1 elapsed=0.01 WARN: {\"context\":\"Job raised "
        "exception\"}\n"
        "pid=4 tid=gq2 class=HardJob jid=b1 elapsed=0.01 WARN: NoMethodError: undefined method "
        "`name' for nil\n"
        "pid=4 tid=gq2 class=HardJob jid=b1 elapsed=0.01 WARN: /app/app/workers/hard_job.rb:5:in "
        "`perform'\n"
        "pid=4 tid=x9z class=Other jid=c2 INFO: start\n"
        "/app/vendor/bundle/ruby/3.2.0/gems/sidekiq-7.1.0/lib/sidekiq/processor.rb:202:in "
        "`execute_job'\n"
        "/app/vendor/bundle/ruby/3.2.0/gems/sidekiq-7.1.0/lib/sidekiq/processor.rb:170:in `block "
        "in process'\n"
        "pid=4 tid=gq2 INFO: done\n"
        "pid=4 tid=gq2 WARN: Errno::ECONNREFUSED: Connection refused - connect(2)\n"
        "pid=4 tid=gq2 INFO: no backtrace followed\n";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.c[0]->lang, SL_LANG_RUBY);
    const struct sl_crash_exc *e = last_exc(r.c[0]);
    assert_string_equal(e->type, "NoMethodError");
    assert_string_equal(e->value, "undefined method `name' for nil");
    assert_int_equal(e->nframes, 3);
    frame_is(&e->frames[0], "sidekiq/processor.rb", "block in process", 170, false);
    frame_is(&e->frames[2], "app/workers/hard_job.rb", "perform", 5, true);
    assert_int_equal(r.c[0]->first_id, 3);
    assert_int_equal(r.c[0]->last_id, 7);
    assert_int_equal(r.c[0]->nlines, 4);
    run_free(&r);
}

/* ---- Node --------------------------------------------------------------------------- */

static void test_node(void **state)
{
    static const char text[] =
        "listening on 3000\n"
        "/app/index.js:10\n"
        "    throw new TypeError('bad thing');\n"
        "    ^\n"
        "\n"
        "TypeError: bad thing\n"
        "    at Object.<anonymous> (/app/index.js:10:11)\n"
        "    at handler (/app/lib/handler.js:5:3)\n"
        "    at async Promise.all (index 0)\n"
        "    at new Foo (file:///app/foo.mjs:2:9)\n"
        "    at /app/node_modules/express/lib/router/layer.js:95:5\n"
        "    at Module._compile (node:internal/modules/cjs/loader:1256:14)\n"
        "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5) {\n"
        "  code: 'ERR_X',\n"
        "  [cause]: Error: inner cause\n"
        "      at inner (/app/index.js:3:9) {\n"
        "    errno: 1\n"
        "  }\n"
        "}\n"
        "\n"
        "Node.js v18.19.0\n"
        "Error: only a log line, no frames\n"
        "next normal line\n"
        "TypeError [ERR_INVALID_ARG_TYPE]: The \"path\" argument must be of type string\n"
        "    at new NodeError (node:internal/errors:405:5)\n"
        "    at run (/app/cli.js:4:1)\n";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 2);
    const struct sl_crash *c = r.c[0];
    assert_int_equal(c->lang, SL_LANG_NODE);
    assert_int_equal(c->nexcs, 2);
    assert_string_equal(c->excs[0].type, "Error");
    assert_string_equal(c->excs[0].value, "inner cause");
    const struct sl_crash_exc *e = &c->excs[1];
    assert_string_equal(e->type, "TypeError");
    assert_int_equal(e->nframes, 7);
    frame_is(&e->frames[0], "node:internal/process/task_queues",
             "process.processTicksAndRejections", 95, false);
    frame_is(&e->frames[2], "/app/node_modules/express/lib/router/layer.js", "?", 95, false);
    assert_string_equal(e->frames[2].module, "express.lib.router:layer");
    frame_is(&e->frames[3], "/app/foo.mjs", "new Foo", 2, true);
    frame_is(&e->frames[4], "index 0", "Promise.all", 0, false);
    frame_is(&e->frames[5], "/app/lib/handler.js", "handler", 5, true);
    assert_string_equal(e->frames[5].module, "lib:handler");
    frame_is(&e->frames[6], "/app/index.js", "Object.?", 10, true);
    assert_int_equal(e->frames[6].colno, 11);
    assert_int_equal(c->first_id, 2);
    assert_int_equal(c->last_id, 21); /* "Node.js v18" ends it */
    e = last_exc(r.c[1]);
    assert_string_equal(e->type, "TypeError");
    assert_string_equal(e->value, "The \"path\" argument must be of type string");
    assert_int_equal(e->nframes, 2);
    frame_is(&e->frames[0], "/app/cli.js", "run", 4, true);
    assert_int_equal(r.c[1]->first_id, 24);
    run_free(&r);
}

/* ---- JVM ---------------------------------------------------------------------------- */

static void test_java(void **state)
{
    static const char text[] =
        "Starting app\n"
        "Exception in thread \"main\" java.lang.IllegalStateException: outer failure\n"
        "\tat com.acme.App.run(App.java:25)\n"
        "\tat com.acme.App.main(App.java:10)\n"
        "\tSuppressed: java.io.IOException: close failed\n"
        "\t\tat com.acme.Res.close(Res.java:5)\n"
        "\t\t... 2 more\n"
        "Caused by: com.acme.DbException: db down\n"
        "\tat com.acme.Db.query(Db.java:40)\n"
        "\tat java.base/java.util.ArrayList.forEach(ArrayList.java:1511)\n"
        "\tat com.acme.App.run(App.java:22)\n"
        "\t... 1 more\n"
        "Caused by: java.net.ConnectException: Connection refused\n"
        "\tat java.base/sun.nio.ch.Net.connect0(Native Method)\n"
        "\tat app//com.acme.Db.open(Unknown Source)\n"
        "\t... 3 more\n"
        "12:00:01.000 [main] INFO com.acme.App - shutting down\n"
        "12:00:02.000 [http-1] ERROR c.a.Web - request failed\n"
        "org.springframework.dao.DataAccessException: boom\n"
        "\tat org.springframework.jdbc.Tmpl.run(Tmpl.java:1) ~[spring-jdbc.jar:5.3]\n"
        "\tat kotlin.collections.CollectionsKt.first(Collections.kt:2)\n"
        "java.lang.RuntimeException: a header with no frames is no trace\n"
        "done\n";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 2);
    const struct sl_crash *c = r.c[0];
    assert_int_equal(c->lang, SL_LANG_JAVA);
    assert_int_equal(c->nexcs, 3);
    /* root cause first */
    assert_string_equal(c->excs[0].type, "ConnectException");
    assert_string_equal(c->excs[0].module, "java.net");
    assert_string_equal(c->excs[1].type, "DbException");
    assert_string_equal(c->excs[2].type, "IllegalStateException");
    assert_string_equal(c->excs[2].module, "java.lang");
    assert_string_equal(c->excs[2].value, "outer failure");
    /* "... N more" filled from the enclosing trace; oldest first */
    const struct sl_crash_exc *e = &c->excs[0];
    assert_int_equal(e->nframes, 5);
    frame_is(&e->frames[0], "App.java", "main", 10, true);
    frame_is(&e->frames[1], "App.java", "run", 22, true);
    frame_is(&e->frames[2], "ArrayList.java", "forEach", 1511, false);
    frame_is(&e->frames[3], NULL, "open", 0, true);
    frame_is(&e->frames[4], NULL, "connect0", 0, false);
    assert_string_equal(e->frames[4].module, "sun.nio.ch.Net");
    assert_int_equal(c->excs[1].nframes, 4);
    /* the suppressed exception's frames are not the outer one's */
    assert_int_equal(c->excs[2].nframes, 2);
    assert_int_equal(c->last_id, 16);
    e = last_exc(r.c[1]);
    assert_string_equal(e->type, "DataAccessException");
    assert_int_equal(e->nframes, 2);
    frame_is(&e->frames[0], "Collections.kt", "first", 2, false);
    frame_is(&e->frames[1], "Tmpl.java", "run", 1, true);
    run_free(&r);
}

static void test_multiline_messages(void **state)
{
    /* JVM and Go messages over several lines join the value once the trace is confirmed;
     * a look-alike followed by ordinary lines keeps none of them */
    static const char text[] =
        "Exception in thread \"main\" org.postgresql.util.PSQLException: ERROR: duplicate key\n"
        "  Detail: Key (id)=(5) already exists.\n"
        "\tat "
        "org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse(QueryExecutorImpl.java:2676)"
        "\n"
        "\tat com.acme.Repo.save(Repo.java:9)\n"
        "Caused by: java.lang.IllegalStateException: first line\n"
        "second line\n"
        "\tat com.acme.Repo.check(Repo.java:3)\n"
        "\t... 1 more\n"
        "panic: bad config:\n"
        "missing key \"port\"\n"
        "\n"
        "goroutine 1 [running]:\n"
        "main.main()\n"
        "\t/app/main.go:5 +0x1d\n"
        "exit status 2\n"
        "Exception in thread \"main\" java.lang.NoClassDefFoundError: com/acme/Gone\n"
        "Caused by: java.lang.ClassNotFoundException: com.acme.Gone\n"
        "\tat java.base/java.net.URLClassLoader.findClass(URLClassLoader.java:445)\n"
        "com.acme.SomeException: logged, no trace\n"
        "12:00:00 INFO next request\n"
        "12:00:01 INFO another\n";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.c[0]->nexcs, 2);
    assert_string_equal(r.c[0]->excs[1].value,
                        "ERROR: duplicate key\n  Detail: Key (id)=(5) already exists.");
    assert_string_equal(r.c[0]->excs[0].value, "first line\nsecond line");
    assert_int_equal(r.c[0]->excs[0].nframes, 2);
    assert_string_equal(last_exc(r.c[1])->value, "bad config:\nmissing key \"port\"");
    assert_int_equal(last_exc(r.c[1])->nframes, 1);
    /* a cause printed before any frame */
    assert_int_equal(r.c[2]->nexcs, 2);
    assert_string_equal(r.c[2]->excs[0].type, "ClassNotFoundException");
    assert_int_equal(r.c[2]->excs[0].nframes, 1);
    assert_string_equal(r.c[2]->excs[1].value, "com/acme/Gone");
    run_free(&r);
}

/* ---- Heroku platform crashes -------------------------------------------------------- */

static void test_platform(void **state)
{
    static const char text[] = "Process running mem=1028MB(103.3%)\n"
                               "Error R14 (Memory quota exceeded)\n"
                               "Process running mem=1100MB(110.0%)\n"
                               "Error R14 (Memory quota exceeded)\n"
                               "Error R10 (Boot timeout) -> Web process failed to bind to $PORT "
                               "within 60 seconds of launch\n"
                               "Stopping process with SIGKILL\n"
                               "Process exited with status 137\n"
                               "State changed from starting to crashed\n"
                               "at=error code=H10 desc=\"App crashed\" method=GET path=\"/\" "
                               "host=x dyno= connect= service= status=503 bytes= protocol=https\n"
                               "at=error code=H10 desc=\"App crashed\" method=GET path=\"/a\" "
                               "host=x dyno= connect= service= status=503 bytes= protocol=https\n"
                               "at=info method=GET path=\"/\" status=200\n"
                               "Error R12 (Exit timeout) is no crash of its own\n";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.c[0]->lang, SL_LANG_PLATFORM);
    assert_string_equal(r.c[0]->platform_code, "R14");
    assert_string_equal(r.c[0]->message, "Error R14 (Memory quota exceeded)");
    assert_int_equal(r.c[0]->nexcs, 0);
    assert_int_equal(r.c[0]->first_id, 2);
    assert_int_equal(r.c[0]->last_id, 4);
    assert_string_equal(r.c[1]->platform_code, "R10");
    assert_int_equal(r.c[1]->last_id, 8);
    assert_string_equal(r.c[2]->platform_code, "H10");
    assert_string_equal(r.c[2]->message, "Error H10 (App crashed)");
    assert_int_equal(r.c[2]->nlines, 2);
    /* one bug, one issue: the same code gives the same fingerprint */
    assert_string_not_equal(r.c[0]->fingerprint, r.c[1]->fingerprint);
    run_free(&r);
}

/* ---- closing rules ------------------------------------------------------------------ */

static void feed1(struct sl_crash_asm *a, int64_t id, int64_t ts, const char *msg, size_t want)
{
    struct sl_crash_line ln = {id, ts, {msg, strlen(msg)}};
    size_t done = 99;
    assert_int_equal(sl_crash_asm_feed(a, &ln, &done), (int)want);
    assert_int_equal(done, want);
}

static void test_gap_flush_open(void **state)
{
    struct sl_crash_limits lim;
    int64_t first = 0;
    size_t done = 9;
    (void)state;
    sl_crash_limits_default(&lim);
    assert_int_equal(lim.gap_us, 500000);
    struct sl_crash_asm *a = sl_crash_asm_new(&lim);
    assert_non_null(a);
    assert_false(sl_crash_asm_open(a, &first));
    feed1(a, 10, 1000000, "panic: boom", 0);
    assert_true(sl_crash_asm_open(a, &first));
    assert_int_equal(first, 10);
    feed1(a, 11, 1000100, "goroutine 1 [running]:", 0);
    feed1(a, 12, 1000200, "main.main()", 0);
    feed1(a, 13, 1000300, "\t/app/main.go:5 +0x1d", 0);
    /* not yet quiet for the gap: stays open */
    assert_int_equal(sl_crash_asm_flush(a, 1400000, &done), 0);
    assert_int_equal(done, 0);
    assert_true(sl_crash_asm_open(a, NULL));
    assert_null(sl_crash_asm_take(a));
    /* quiet past the gap (lines' own times): closed */
    assert_int_equal(sl_crash_asm_flush(a, 1600000, &done), 1);
    assert_int_equal(done, 1);
    assert_false(sl_crash_asm_open(a, NULL));
    struct sl_crash *c = sl_crash_asm_take(a);
    assert_non_null(c);
    assert_int_equal(c->last_id, 13);
    assert_int_equal(c->first_ts_us, 1000000);
    assert_int_equal(c->last_ts_us, 1000300);
    sl_crash_free(c);
    assert_null(sl_crash_asm_take(a));

    /* a line after the gap closes the open trace before it is looked at: here it is a
     * new trace's first line, and both come out */
    feed1(a, 20, 5000000, "panic: one", 0);
    feed1(a, 21, 5000001, "goroutine 1 [running]:", 0);
    feed1(a, 22, 5000002, "main.main()", 0);
    feed1(a, 23, 5000003, "\t/app/main.go:5 +0x1d", 0);
    feed1(a, 24, 6000000, "panic: two", 1);
    feed1(a, 25, 6000001, "goroutine 1 [running]:", 0);
    assert_int_equal(sl_crash_asm_finish(a, &done), 1);
    c = sl_crash_asm_take(a);
    assert_string_equal(last_exc(c)->value, "one");
    sl_crash_free(c);
    c = sl_crash_asm_take(a);
    assert_string_equal(last_exc(c)->value, "two");
    assert_int_equal(last_exc(c)->nframes, 0);
    sl_crash_free(c);

    /* a Python trace cut by the gap before its exception line is still a crash */
    feed1(a, 30, 9000000, "Traceback (most recent call last):", 0);
    feed1(a, 31, 9000001, "  File \"/app/x.py\", line 1, in <module>", 0);
    feed1(a, 32, 9900000, "KeyError: 'late'", 1);
    c = sl_crash_asm_take(a);
    assert_true(c->truncated);
    assert_int_equal(last_exc(c)->nframes, 1);
    assert_int_equal(c->last_id, 31);
    sl_crash_free(c);
    /* open crashes not taken are freed with the assembler */
    feed1(a, 40, 9900001, "panic: left", 0);
    feed1(a, 41, 9900002, "goroutine 1 [running]:", 0);
    assert_int_equal(sl_crash_asm_finish(a, NULL), 1);
    sl_crash_asm_free(a);
}

static void test_caps(void **state)
{
    /* A 10 000-line JVM trace: cut at max_lines, still one crash, truncated, and the
     * lines after it are not swallowed. */
    struct sl_buf b;
    struct sl_crash_limits lim;
    struct run r;
    (void)state;
    sl_buf_init(&b, 4 << 20);
    assert_int_equal(sl_buf_addf(&b, "Exception in thread \"main\" java.lang.StackOverflowError\n"),
                     0);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(sl_buf_addf(&b, "\tat com.acme.Rec.down(Rec.java:%d)\n", i + 1), 0);
    assert_int_equal(sl_buf_addf(&b, "Traceback (most recent call last):\n"
                                     "  File \"/app/x.py\", line 1, in <module>\n"
                                     "ValueError: after\n"),
                     0);
    assert_int_equal(sl_buf_addc(&b, '\0'), 0);
    sl_crash_limits_default(&lim);
    run_lim(b.p, 10, &lim, &r);
    assert_int_equal(r.n, 2);
    assert_true(r.c[0]->truncated);
    assert_int_equal(r.c[0]->nlines, lim.max_lines);
    assert_int_equal(r.c[0]->last_id, 10001);
    assert_true(last_exc(r.c[0])->nframes <= lim.max_lines);
    assert_true(last_exc(r.c[0])->frames_omitted);
    assert_string_equal(last_exc(r.c[0])->type, "StackOverflowError");
    /* frames kept are the newest (printed first), now last */
    assert_int_equal(last_exc(r.c[0])->frames[last_exc(r.c[0])->nframes - 1].lineno, 1);
    assert_string_equal(last_exc(r.c[1])->type, "ValueError");
    run_free(&r);

    /* bytes: a Python trace past max_bytes keeps its exception line (the type) */
    lim.max_bytes = 600;
    sl_buf_reset(&b);
    assert_int_equal(sl_buf_addf(&b, "Traceback (most recent call last):\n"), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(
            sl_buf_addf(&b, "  File \"/app/mod%d.py\", line %d, in f%d\n    f()\n", i, i + 1, i),
            0);
    assert_int_equal(sl_buf_addf(&b, "RecursionError: deep\n"), 0);
    assert_int_equal(sl_buf_addc(&b, '\0'), 0);
    run_lim(b.p, 10, &lim, &r);
    assert_int_equal(r.n, 1);
    assert_true(r.c[0]->truncated);
    assert_string_equal(last_exc(r.c[0])->type, "RecursionError");
    assert_true(last_exc(r.c[0])->nframes < 50);
    assert_int_equal(r.c[0]->last_id, 102);
    run_free(&r);
    sl_buf_free(&b);
}

static void test_memory_bounded(void **state)
{
    /* An assembler's memory stays bounded however long the trace runs. */
    struct sl_crash_limits lim;
    char line[256];
    (void)state;
    sl_crash_limits_default(&lim);
    lim.max_lines = 100;
    struct sl_crash_asm *a = sl_crash_asm_new(&lim);
    feed1(a, 1, 0, "Exception in thread \"main\" java.lang.StackOverflowError", 0);
    size_t at100 = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(line, sizeof(line), "\tat com.acme.Rec.down(Rec.java:%d)", i);
        feed1(a, i + 2, i + 1, line, 0);
        if (i == 150)
            at100 = sl_crash_asm_bytes(a);
    }
    assert_true(at100 > 0);
    assert_int_equal(sl_crash_asm_bytes(a), at100);
    sl_crash_asm_free(a);
}

static void test_unicode_and_long_lines(void **state)
{
    /* a 100 KB line, a message in Japanese and emoji, invalid bytes in a path */
    struct sl_buf b;
    struct run r;
    (void)state;
    sl_buf_init(&b, 1 << 20);
    assert_int_equal(
        sl_buf_addf(
            &b, "Traceback (most recent call last):\n"
                "  File \"/app/\xe6\x97\xa5\xe6\x9c\xac.py\", line 3, in h\xff\n"
                "ValueError: \xe5\x80\xa4\xe3\x81\x8c\xe4\xb8\x8d\xe6\xad\xa3 \xf0\x9f\x92\xa5 "),
        0);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(sl_buf_addc(&b, i % 3 == 0 ? '\xc3' : i % 3 == 1 ? '\xa9' : 'x'), 0);
    assert_int_equal(sl_buf_addf(&b, "\nafter\n"), 0);
    assert_int_equal(sl_buf_addc(&b, '\0'), 0);
    run(b.p, &r);
    assert_int_equal(r.n, 1);
    const struct sl_crash_exc *e = last_exc(r.c[0]);
    assert_true(strlen(e->value) <= 8192);
    assert_true(sl_utf8_clean(e->value, strlen(e->value)));
    assert_memory_equal(e->value, "\xe5\x80\xa4", 3);
    assert_string_equal(e->frames[0].filename, "\xe6\x97\xa5\xe6\x9c\xac.py");
    struct sl_buf ev;
    sl_buf_init(&ev, 1 << 20);
    assert_int_equal(sl_crash_event_json(r.c[0], NULL, &ev), 0);
    assert_true(sl_utf8_clean(ev.p, ev.len));
    cJSON *j = cJSON_ParseWithLength(ev.p, ev.len);
    assert_non_null(j);
    cJSON_Delete(j);
    sl_buf_free(&ev);
    run_free(&r);
    sl_buf_free(&b);
}

static void test_fingerprint(void **state)
{
    /* the same bug with other line numbers, values and paths around: one fingerprint;
     * another function: another */
    static const char *const texts[] = {
        "Traceback (most recent call last):\n"
        "  File \"/app/.heroku/python/lib/python3.12/site-packages/x/y.py\", line 5, in run\n"
        "  File \"/app/app/views.py\", line 10, in show\n"
        "  File \"/app/app/models.py\", line 20, in load\n"
        "KeyError: 'a'\n",
        "Traceback (most recent call last):\n"
        "  File \"/app/.heroku/python/lib/python3.12/site-packages/x/y.py\", line 7, in run\n"
        "  File \"/app/app/views.py\", line 11, in show\n"
        "  File \"/app/app/models.py\", line 23, in load\n"
        "KeyError: 'b'\n",
        "Traceback (most recent call last):\n"
        "  File \"/app/app/views.py\", line 11, in index\n"
        "  File \"/app/app/models.py\", line 23, in load\n"
        "KeyError: 'b'\n",
    };
    char fp[3][65];
    (void)state;
    for (int i = 0; i < 3; i++) {
        struct run r;
        run(texts[i], &r);
        assert_int_equal(r.n, 1);
        memcpy(fp[i], r.c[0]->fingerprint, 65);
        run_free(&r);
    }
    assert_string_equal(fp[0], fp[1]);
    assert_string_not_equal(fp[1], fp[2]);
}

/* ---- the event ---------------------------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_event_json(void **state)
{
    static const char text[] =
        "Traceback (most recent call last):\n"
        "  File \"/app/x.py\", line 1, in <module>\n"
        "ValueError: root\n"
        "\n"
        "During handling of the above exception, another exception occurred:\n"
        "\n"
        "Traceback (most recent call last):\n"
        "  File \"/app/x.py\", line 3, in <module>\n"
        "RuntimeError: \"quoted\" \\ and\ttab\n";
    struct run r;
    struct sl_buf b;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 1);
    struct sl_crash_ctx cx = {
        .event_id = "0123456789abcdef0123456789abcdef",
        .source_name = "shop",
        .server_name = "web.1",
        .release = "v42",
        .environment = "production",
        .tags_json = "{\"env\":\"production\",\"dyno\":\"mine\"}",
        .search_url = "https://logs.example.com/search?q=x",
        .breadcrumbs_json =
            "[{\"category\":\"heroku\",\"message\":\"Process exited with status 1\"}]",
        .timestamp_us = 1795255200123456LL,
    };
    sl_buf_init(&b, 1 << 20);
    assert_int_equal(sl_crash_event_json(r.c[0], &cx, &b), 0);
    cJSON *j = cJSON_ParseWithLength(b.p, b.len);
    assert_non_null(j);
    assert_string_equal(jstr(j, "event_id"), cx.event_id);
    assert_string_equal(jstr(j, "platform"), "python");
    assert_string_equal(jstr(j, "level"), "error");
    assert_string_equal(jstr(j, "server_name"), "web.1");
    assert_string_equal(jstr(j, "release"), "v42");
    assert_string_equal(jstr(j, "environment"), "production");
    assert_string_equal(jstr(j, "timestamp"), "2026-11-21T10:00:00.123456Z");
    const cJSON *vals = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "exception"), "values");
    assert_int_equal(cJSON_GetArraySize(vals), 2);
    const cJSON *v0 = cJSON_GetArrayItem(vals, 0), *v1 = cJSON_GetArrayItem(vals, 1);
    assert_string_equal(jstr(v0, "type"), "ValueError");
    assert_string_equal(jstr(v1, "type"), "RuntimeError");
    assert_string_equal(jstr(v1, "value"), "\"quoted\" \\ and\ttab");
    const cJSON *mech = cJSON_GetObjectItem(v1, "mechanism");
    assert_string_equal(jstr(mech, "type"), "sluice");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(mech, "handled")));
    const cJSON *fr =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(v1, "stacktrace"), "frames"), 0);
    assert_string_equal(jstr(fr, "filename"), "x.py");
    assert_string_equal(jstr(fr, "function"), "<module>");
    assert_int_equal(cJSON_GetObjectItem(fr, "lineno")->valueint, 3);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(fr, "in_app")));
    /* tags: the source's, then ours where they do not clash */
    const cJSON *tags = cJSON_GetObjectItem(j, "tags");
    assert_string_equal(jstr(tags, "env"), "production");
    assert_string_equal(jstr(tags, "dyno"), "mine");
    assert_string_equal(jstr(tags, "source"), "shop");
    assert_string_equal(jstr(tags, "dyno_type"), "web");
    const cJSON *bc = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "breadcrumbs"), "values");
    assert_int_equal(cJSON_GetArraySize(bc), 1);
    const cJSON *extra = cJSON_GetObjectItem(j, "extra");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(extra, "sluice.line_ids")), 9);
    assert_string_equal(jstr(extra, "sluice.search_url"), cx.search_url);
    const cJSON *fp = cJSON_GetObjectItem(j, "fingerprint");
    assert_string_equal(cJSON_GetArrayItem(fp, 0)->valuestring, r.c[0]->fingerprint);
    cJSON_Delete(j);
    run_free(&r);

    /* a platform crash: a message event */
    run("Error R14 (Memory quota exceeded)\n", &r);
    sl_buf_reset(&b);
    assert_int_equal(sl_crash_event_json(r.c[0], NULL, &b), 0);
    j = cJSON_ParseWithLength(b.p, b.len);
    assert_non_null(j);
    assert_string_equal(jstr(j, "message"), "Error R14 (Memory quota exceeded)");
    assert_string_equal(jstr(j, "platform"), "other");
    assert_null(cJSON_GetObjectItem(j, "exception"));
    assert_int_equal(strlen(jstr(j, "event_id")), 32);
    cJSON_Delete(j);
    run_free(&r);

    /* an event that does not fit the caller's cap fails, it is not cut */
    run(PY_TB, &r);
    struct sl_buf small;
    sl_buf_init(&small, 200);
    assert_int_equal(sl_crash_event_json(r.c[0], NULL, &small), SL_ETOOBIG);
    sl_buf_free(&small);
    run_free(&r);
    sl_buf_free(&b);
}

static void test_event_frame_cap(void **state)
{
    /* more than 250 frames: Sentry's oldest 50 and newest 200, frames_omitted says which */
    struct sl_buf b, ev;
    struct run r;
    (void)state;
    sl_buf_init(&b, 1 << 20);
    assert_int_equal(sl_buf_addf(&b, "Exception in thread \"main\" java.lang.StackOverflowError\n"),
                     0);
    for (int i = 0; i < 400; i++)
        assert_int_equal(sl_buf_addf(&b, "\tat a.B.c(B.java:%d)\n", i + 1), 0);
    assert_int_equal(sl_buf_addc(&b, '\0'), 0);
    run(b.p, &r);
    sl_buf_init(&ev, 1 << 20);
    assert_int_equal(sl_crash_event_json(r.c[0], NULL, &ev), 0);
    cJSON *j = cJSON_ParseWithLength(ev.p, ev.len);
    const cJSON *st = cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "exception"), "values"), 0),
        "stacktrace");
    const cJSON *frames = cJSON_GetObjectItem(st, "frames");
    assert_int_equal(cJSON_GetArraySize(frames), 250);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(frames, 249), "lineno")->valueint, 1);
    const cJSON *om = cJSON_GetObjectItem(st, "frames_omitted");
    assert_int_equal(cJSON_GetArrayItem(om, 0)->valueint, 50);
    assert_int_equal(cJSON_GetArrayItem(om, 1)->valueint, 200);
    cJSON_Delete(j);

    /* a buffer too small for 250 frames: the event gives up frames (the middle first)
     * and still fits, whole and valid */
    size_t full = ev.len;
    struct sl_buf small;
    sl_buf_init(&small, full / 3);
    assert_int_equal(sl_crash_event_json(r.c[0], NULL, &small), 0);
    assert_true(small.len <= full / 3);
    j = cJSON_ParseWithLength(small.p, small.len);
    assert_non_null(j);
    st = cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "exception"), "values"), 0),
        "stacktrace");
    frames = cJSON_GetObjectItem(st, "frames");
    assert_true(cJSON_GetArraySize(frames) < 250 && cJSON_GetArraySize(frames) > 0);
    /* the raising frame is still the last */
    assert_int_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(frames, cJSON_GetArraySize(frames) - 1), "lineno")
            ->valueint,
        1);
    cJSON_Delete(j);
    sl_buf_free(&small);
    sl_buf_free(&ev);
    sl_buf_free(&b);
    run_free(&r);
}

/* ---- Sentry: envelope, DSN, auth, rate limits --------------------------------------- */

static void test_envelope_auth(void **state)
{
    struct sl_crash_dsn d;
    struct sl_buf b;
    char why[128];
    (void)state;
    assert_int_equal(
        sl_crash_dsn_parse("https://abc123@o1.ingest.sentry.io/42", &d, why, sizeof(why)), 0);
    sl_buf_init(&b, 4096);
    assert_int_equal(sl_crash_auth_header(&d, "1.2.3", &b), 0);
    assert_int_equal(sl_buf_addc(&b, '\0'), 0);
    assert_string_equal(b.p,
                        "Sentry sentry_version=7, sentry_client=sluice/1.2.3, sentry_key=abc123");
    sl_buf_reset(&b);
    static const char ev[] = "{\"event_id\":\"0123456789abcdef0123456789abcdef\"}";
    assert_int_equal(sl_crash_envelope(&d, "0123456789abcdef0123456789abcdef", 1795255200000000LL,
                                       sl_str_make(ev, sizeof(ev) - 1), &b),
                     0);
    assert_int_equal(sl_buf_addc(&b, '\0'), 0);
    char *nl1 = strchr(b.p, '\n');
    assert_non_null(nl1);
    *nl1 = '\0';
    cJSON *h = cJSON_Parse(b.p);
    assert_non_null(h);
    assert_string_equal(jstr(h, "event_id"), "0123456789abcdef0123456789abcdef");
    assert_string_equal(jstr(h, "sent_at"), "2026-11-21T10:00:00.000000Z");
    assert_string_equal(jstr(h, "dsn"), "https://abc123@o1.ingest.sentry.io/42");
    cJSON_Delete(h);
    char *nl2 = strchr(nl1 + 1, '\n');
    assert_non_null(nl2);
    *nl2 = '\0';
    cJSON *it = cJSON_Parse(nl1 + 1);
    assert_string_equal(jstr(it, "type"), "event");
    assert_int_equal(cJSON_GetObjectItem(it, "length")->valueint, (int)(sizeof(ev) - 1));
    cJSON_Delete(it);
    assert_memory_equal(nl2 + 1, ev, sizeof(ev) - 1);
    assert_string_equal(nl2 + sizeof(ev), "\n");
    sl_buf_free(&b);
}

static void test_dsn(void **state)
{
    static const struct {
        const char *dsn;
        const char *url; /* NULL: refused */
        const char *why; /* a word of the reason */
    } cases[] = {
        {"https://abc123@o1.ingest.sentry.io/42", "https://o1.ingest.sentry.io/api/42/envelope/",
         NULL},
        {"http://key:secret@127.0.0.1:9000/sentry/7",
         "http://127.0.0.1:9000/sentry/api/7/envelope/", NULL},
        {"https://k@[::1]:8443/3", "https://[::1]:8443/api/3/envelope/", NULL},
        {"https://k@h.example/a/b/9/", "https://h.example/a/b/api/9/envelope/", NULL},
        {"", NULL, "empty"},
        {"abc", NULL, "scheme"},
        {"ftp://k@h/1", NULL, "https or http"},
        {"https://h/1", NULL, "public key"},
        {"https://@h/1", NULL, "public key"},
        {"https://k@/1", NULL, "no host"},
        {"https://k@h", NULL, "project id"},
        {"https://k@h/", NULL, "project id"},
        {"https://k@h/abc", NULL, "numeric"},
        {"https://k@h:99999/1", NULL, "port"},
        {"https://k@h:x/1", NULL, "port"},
        {"https://k@h/1?x=1", NULL, "query"},
        {"https://k y@h/1", NULL, "spaces"},
        {"https://k!@h/1", NULL, "public key"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_crash_dsn d;
        char why[128] = "";
        int rc = sl_crash_dsn_parse(cases[i].dsn, &d, why, sizeof(why));
        if (cases[i].url) {
            assert_int_equal(rc, 0);
            assert_string_equal(d.envelope_url, cases[i].url);
        } else {
            assert_int_equal(rc, SL_EINVAL);
            if (!strstr(why, cases[i].why))
                fail_msg("%s: reason \"%s\" lacks \"%s\"", cases[i].dsn, why, cases[i].why);
        }
    }
    struct sl_crash_dsn d;
    assert_int_equal(sl_crash_dsn_parse("http://key:secret@127.0.0.1:9000/sentry/7", &d, NULL, 0),
                     0);
    assert_string_equal(d.public_key, "key");
    assert_string_equal(d.host, "127.0.0.1");
    assert_int_equal(d.port, 9000);
    assert_string_equal(d.path, "/sentry");
    assert_string_equal(d.project_id, "7");
}

static void test_rate_limits(void **state)
{
    const int64_t now = 1445412420LL * 1000000; /* Wed, 21 Oct 2015 07:27:00 GMT */
    const int64_t s = 1000000;
    static const struct {
        int status;
        const char *retry_after, *limits;
        int64_t want_s; /* seconds after now; -1: not limited */
    } cases[] = {
        {200, NULL, NULL, -1},
        {500, "30", NULL, -1},
        {429, NULL, NULL, 60},
        {429, "30", NULL, 30},
        {429, "0", NULL, 1},
        {429, "Wed, 21 Oct 2015 07:28:00 GMT", NULL, 60},
        {429, "Wed, 21 Oct 2015 07:00:00 GMT", NULL, 1},
        {429, "soon", NULL, 60},
        {200, NULL, "60:error:organization", 60},
        {200, NULL, "60:transaction:organization", -1},
        {429, "10", "60:transaction;session:organization", -1},
        {200, NULL, "120::organization", 120},
        {200, NULL, "60:error;transaction:key, 2700:default:project", 60},
        {200, NULL, "10:error:key, 30:error;attachment:org:quota_exceeded", 30},
        {429, "5", "junk", 5},
        {429, NULL, "", 60},
        {429, "999999999999999999999", NULL, 60},
        {200, NULL, "999999999999999999999:error", -1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got =
            sl_crash_rate_limit_until(cases[i].status, cases[i].retry_after, cases[i].limits, now);
        int64_t want = cases[i].want_s < 0 ? 0 : now + cases[i].want_s * s;
        if (got != want)
            fail_msg("case %zu: got %lld want %lld", i, (long long)(got - now),
                     (long long)(want - now));
    }
    /* 2.5 seconds */
    assert_int_equal(sl_crash_rate_limit_until(429, "2.5", NULL, now), now + 2500000);
}

/* ---- anchors ------------------------------------------------------------------------ */

static void test_anchors(void **state)
{
    static const struct {
        const char *app, *proc, *msg;
        enum sl_crash_anchor want;
    } cases[] = {
        {"app", "web.1", "Traceback (most recent call last):", SL_CRASH_TRACE},
        {"app", "web.1", "panic: runtime error: index out of range [5] with length 3",
         SL_CRASH_TRACE},
        {"app", "web.1", "fatal error: concurrent map writes", SL_CRASH_TRACE},
        {"app", "web.1", "Exception in thread \"main\" java.lang.IllegalStateException: x",
         SL_CRASH_TRACE},
        {"app", "web.1", "java.lang.IllegalStateException: x", SL_CRASH_TRACE},
        {"app", "web.1", "TypeError: Cannot read properties of undefined (reading 'id')",
         SL_CRASH_TRACE},
        {"app", "web.1", "Uncaught Error: boom", SL_CRASH_TRACE},
        {"app", "web.1", "NoMethodError (undefined method `name' for nil):", SL_CRASH_TRACE},
        {"app", "web.1", "ActiveRecord::RecordNotFound (Couldn't find User):", SL_CRASH_TRACE},
        {"app", "web.1", "/app/app/models/user.rb:12:in 'x': y (NoMethodError)", SL_CRASH_TRACE},
        {"app", "web.1",
         "E, [2026-11-21T10:00:00.123 #4] ERROR -- : NoMethodError (x):", SL_CRASH_TRACE},
        {"app", "web.1",
         "F, [2026-11-21T10:00:00.123 #4] FATAL -- : [6c1e] NoMethodError (x):", SL_CRASH_TRACE},
        {"app", "web.1",
         "F, [2026-12-07T03:38:35.2 #3] FATAL -- : [4f0c] NoMethodError (undefined method `name' "
         "for nil:NilClass",
         SL_CRASH_TRACE},
        {"app", "web.1", "Completed (in 3ms", SL_CRASH_NONE},
        {"app", "worker.1",
         "[2026-11-21 10:00:00,000: ERROR/ForkPoolWorker-1] Task a.b[1] raised unexpected: "
         "KeyError('x')",
         SL_CRASH_TRACE},
        {"app", "web.1", "  File \"/app/x.py\", line 3", SL_CRASH_TRACE},
        {"app", "worker.1",
         "pid=4 tid=gq2 class=HardJob jid=b1 WARN: NoMethodError: undefined method",
         SL_CRASH_TRACE},
        {"app", "worker.1", "pid=4 tid=gq2 class=HardJob jid=b1 INFO: done", SL_CRASH_NONE},
        {"app", "worker.1", "pid=4 tid=gq2 WARN: {\"context\":\"Job raised exception\"}",
         SL_CRASH_NONE},
        {"app", "web.1", "  + Exception Group Traceback (most recent call last):", SL_CRASH_TRACE},
        {"app", "web.1", "[UnhandledPromiseRejection: This error originated ...] {",
         SL_CRASH_TRACE},
        {"heroku", "web.1", "Error R14 (Memory quota exceeded)", SL_CRASH_PLATFORM},
        {"heroku", "web.1", "Error R10 (Boot timeout) -> Web process failed", SL_CRASH_PLATFORM},
        {"heroku", "web.1", "Process exited with status 1", SL_CRASH_PLATFORM},
        {"heroku", "web.1", "State changed from up to crashed", SL_CRASH_PLATFORM},
        {"heroku", "router", "at=error code=H10 desc=\"App crashed\" method=GET path=\"/\"",
         SL_CRASH_PLATFORM},
        {"app", "api", "Release v42 created by user dev@example.com", SL_CRASH_RELEASE},
        {"heroku", "router", "at=info method=GET path=\"/\" status=200", SL_CRASH_NONE},
        {"heroku", "router", "at=error code=H12 desc=\"Request timeout\"", SL_CRASH_NONE},
        {"heroku", "web.1", "State changed from starting to up", SL_CRASH_NONE},
        {"heroku", "web.1", "Traceback (most recent call last):", SL_CRASH_NONE},
        {"app", "web.1", "\"GET /api/v1/validations HTTP/1.1\" 200 512", SL_CRASH_NONE},
        {"app", "web.1", "{\"level\":\"info\",\"msg\":\"request\"}", SL_CRASH_NONE},
        {"app", "web.1", "user panic: not a trace", SL_CRASH_NONE},
        {"app", "web.1", "INFO Booting worker with pid: 12", SL_CRASH_NONE},
        {"app", "web.1", "ErrorCount=5", SL_CRASH_NONE},
        {"app", "web.1", "I, [2026-11-21T10:00:00.100 #4]  INFO -- : Started GET \"/\"",
         SL_CRASH_NONE},
        {"app", "web.1", "[2026-11-21 10:00:00 +0000] [4] [INFO] Booting worker", SL_CRASH_NONE},
        {"app", "web.1", "source=web.1 dyno=heroku.2808254 sample#memory_total=21.00MB",
         SL_CRASH_NONE},
        {"app", "web.1", "Release v42 created by user dev@example.com", SL_CRASH_NONE},
        {"app", "web.1", "", SL_CRASH_NONE},
        {"app", "web.1", "pan", SL_CRASH_NONE},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum sl_crash_anchor got =
            sl_crash_anchor(sl_str_make(cases[i].app, strlen(cases[i].app)),
                            sl_str_make(cases[i].proc, strlen(cases[i].proc)),
                            sl_str_make(cases[i].msg, strlen(cases[i].msg)));
        if (got != cases[i].want)
            fail_msg("%s[%s] \"%s\": anchor %d, want %d", cases[i].app, cases[i].proc, cases[i].msg,
                     (int)got, (int)cases[i].want);
    }
}

/* ---- the stream corpus -------------------------------------------------------------- */

struct proc {
    char name[32];
    struct sl_crash_asm *a;
};

static const char *corpus_root(char *dst, size_t cap)
{
    const char *env = getenv("SLUICE_CORPUS");
    snprintf(dst, cap, "%s", env && *env ? env : "tests/fixtures/corpus");
    return dst;
}

/* Every stream of the corpus: its lines, split by procid, through one assembler each;
 * exactly one trace crash (the manifest's) and no anchor outside a crash. */
static void test_corpus(void **state)
{
    static const struct {
        const char *stream, *proc, *type_has;
        enum sl_crash_lang lang;
    } want[] = {
        {"validibot", "web.2", "KeyError", SL_LANG_PYTHON},
        {"packfinderz", "api.1", "runtime error", SL_LANG_GO},
    };
    char root[512];
    (void)state;
    corpus_root(root, sizeof(root));
    for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
        struct proc procs[16];
        size_t nprocs = 0, traces = 0, anchored = 0, anchored_in = 0;
        int64_t id = 0, anchor_ids[64];
        struct run r = {0};
        memset(procs, 0, sizeof(procs));
        for (int f = 0;; f++) {
            char path[700];
            snprintf(path, sizeof(path), "%s/streams/%s/%03d.logplex", root, want[w].stream, f);
            FILE *fp = fopen(path, "rb");
            if (!fp) {
                assert_true(f > 0);
                break;
            }
            static char body[1 << 20];
            size_t n = fread(body, 1, sizeof(body), fp);
            fclose(fp);
            size_t i = 0;
            while (i < n) {
                size_t len = 0;
                while (i < n && body[i] != ' ')
                    len = len * 10 + (size_t)(body[i++] - '0');
                i++;
                assert_true(i + len <= n);
                /* <pri>1 TS HOST APP PROC - MSG */
                const char *m = body + i, *end = body + i + len, *fld[6];
                const char *p = m;
                for (int k = 0; k < 6; k++) {
                    fld[k] = p;
                    p = memchr(p, ' ', (size_t)(end - p));
                    assert_non_null(p);
                    p++;
                }
                size_t mlen = (size_t)(end - p);
                if (mlen && p[mlen - 1] == '\n')
                    mlen--;
                struct sl_str app = sl_str_make(fld[3], (size_t)(fld[4] - fld[3] - 1));
                struct sl_str proc = sl_str_make(fld[4], (size_t)(fld[5] - fld[4] - 1));
                /* HH:MM:SS.ffffff of the timestamp, one day */
                const char *t = fld[1] + 11;
                int64_t ts = ((int64_t)atoi(t) * 3600 + atoi(t + 3) * 60 + atoi(t + 6)) * 1000000 +
                             atoi(t + 9);
                struct sl_crash_line ln = {++id, ts, {p, mlen}};
                if (sl_crash_anchor(app, proc, ln.msg) == SL_CRASH_TRACE) {
                    assert_true(anchored < 64);
                    anchor_ids[anchored++] = id;
                }
                size_t k;
                for (k = 0; k < nprocs; k++)
                    if (strlen(procs[k].name) == proc.len &&
                        memcmp(procs[k].name, proc.p, proc.len) == 0)
                        break;
                if (k == nprocs) {
                    assert_true(nprocs < 16);
                    snprintf(procs[k].name, sizeof(procs[k].name), "%.*s", (int)proc.len, proc.p);
                    procs[k].a = sl_crash_asm_new(NULL);
                    nprocs++;
                }
                assert_true(sl_crash_asm_feed(procs[k].a, &ln, NULL) >= 0);
                take_all(procs[k].a, &r);
                for (; traces < r.n; traces++)
                    if (r.c[traces]->lang != SL_LANG_PLATFORM)
                        assert_string_equal(procs[k].name, want[w].proc);
                i += len;
            }
        }
        for (size_t k = 0; k < nprocs; k++) {
            assert_true(sl_crash_asm_finish(procs[k].a, NULL) >= 0);
            take_all(procs[k].a, &r);
            sl_crash_asm_free(procs[k].a);
        }
        size_t ntrace = 0;
        for (size_t c = 0; c < r.n; c++) {
            if (r.c[c]->lang == SL_LANG_PLATFORM) {
                assert_string_equal(r.c[c]->platform_code, "H10");
                continue;
            }
            ntrace++;
            assert_int_equal(r.c[c]->lang, want[w].lang);
            const struct sl_crash_exc *e = last_exc(r.c[c]);
            if (!strstr(e->type, want[w].type_has) && !strstr(e->value, want[w].type_has))
                fail_msg("%s: %s: %s", want[w].stream, e->type, e->value);
            assert_true(e->nframes >= 3);
            for (size_t a = 0; a < anchored; a++) {
                bool in = false;
                for (size_t l = 0; l < r.c[c]->nlines; l++)
                    in = in || r.c[c]->line_ids[l] == anchor_ids[a];
                anchored_in += in;
            }
        }
        assert_int_equal(ntrace, 1);
        assert_true(anchored >= 1);
        assert_int_equal(anchored_in, anchored); /* no anchor outside the crash */
        run_free(&r);
    }
}

/* ---- what the SDK oracle found (docs/internals/crash-assembly.md) ------------------- */

static void test_oracle_go_repanic_and_types(void **state)
{
    /* F1: sentry-go's Recover-then-repanic prints the value twice: one exception */
    static const char text[] =
        "panic: runtime error: index out of range [5] with length 3 [recovered]\n"
        "\tpanic: runtime error: index out of range [5] with length 3\n"
        "\n"
        "goroutine 1 [running]:\n"
        "main.report()\n"
        "\t/app/main.go:44 +0x5d\n"
        "panic({0x73e7e0, 0xc00001c618})\n"
        "\t/usr/lib/go-1.19/src/runtime/panic.go:884 +0x212\n"
        "main.(*Cart).Item(...)\n"
        "\t/app/main.go:49\n"
        "main.main()\n"
        "\t/app/main.go:88 +0x3b6\n"
        "exit status 2\n"
        /* F2: the runtime's own types */
        "panic: runtime error: invalid memory address or nil pointer dereference\n"
        "goroutine 1 [running]:\n"
        "main.main()\n"
        "\t/app/main.go:5 +0x1\n"
        "exit status 2\n"
        "panic: assignment to entry in nil map\n"
        "goroutine 1 [running]:\n"
        "main.main()\n"
        "\t/app/main.go:6 +0x1\n"
        "exit status 2\n";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.c[0]->nexcs, 1);
    const struct sl_crash_exc *e = last_exc(r.c[0]);
    assert_string_equal(e->type, "runtime.boundsError");
    assert_int_equal(e->nframes, 3);
    frame_is(&e->frames[0], NULL, "main", 88, true);
    frame_is(&e->frames[1], NULL, "(*Cart).Item", 49, true);
    frame_is(&e->frames[2], NULL, "report", 44, true);
    assert_string_equal(last_exc(r.c[1])->type, "runtime.errorString");
    assert_string_equal(last_exc(r.c[2])->type, "runtime.plainError");
    run_free(&r);
}

static void test_oracle_messages_over_lines(void **state)
{
    /* F7: Python prints str(e) whole after the type; F8: Ruby prints " (Type)" after the
     * message's first line, then the rest, then the frames. What follows a trace and is
     * plainly something else (Heroku's lines, a logger's) is not part of the message. */
    static const char text[] =
        "Traceback (most recent call last):\n"
        "  File \"/app/shop/orders.py\", line 46, in validate\n"
        "    raise ValueError(\"invalid order:\\n\" + \"\\n\".join(problems))\n"
        "ValueError: invalid order:\n"
        "sku: missing or negative\n"
        "\n"
        "qty: missing or negative\n"
        "\n"
        "Process exited with status 1\n"
        "/app/app/models/order.rb:22:in `validate!': invalid order: (ArgumentError)\n"
        "kiwi: no price\n"
        "lime: no price\n"
        "\tfrom /app/app/controllers/orders_controller.rb:10:in `update'\n"
        "\tfrom /app/bin/crash.rb:59:in `<main>'\n"
        "I, [2026-12-07T03:38:35.220900 #4]  INFO -- : next request\n"
        "Traceback (most recent call last):\n"
        "  File \"/app/x.py\", line 1, in <module>\n"
        "KeyError: 'a'\n"
        "level=info msg=\"next\"\n";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 3);
    assert_string_equal(last_exc(r.c[0])->value,
                        "invalid order:\nsku: missing or negative\n\nqty: missing or negative");
    assert_int_equal(r.c[0]->last_id, 8);
    assert_string_equal(last_exc(r.c[1])->value, "invalid order:\nkiwi: no price\nlime: no price");
    assert_int_equal(last_exc(r.c[1])->nframes, 3);
    assert_string_equal(last_exc(r.c[2])->value, "'a'");
    assert_int_equal(r.c[2]->last_id, 18);
    run_free(&r);
}

static void test_oracle_ruby_thread_twice(void **state)
{
    /* F9: a dead thread's report, then the same again when join re-raises it: one crash,
     * the chain once */
    static const char text[] =
        "#<Thread:0x00007f542c1aa5b8 /app/bin/crash.rb:50 run> terminated with exception "
        "(report_on_exception is true):\n"
        "/app/app/models/order.rb:28:in `rescue in charge!': cannot charge (ArgumentError)\n"
        "\tfrom /app/app/models/order.rb:25:in `charge!'\n"
        "/app/app/models/order.rb:13:in `fetch': key not found: \"plum\" (KeyError)\n"
        "\tfrom /app/app/models/order.rb:13:in `charge!'\n"
        "/app/app/models/order.rb:28:in `rescue in charge!': cannot charge (ArgumentError)\n"
        "\tfrom /app/app/models/order.rb:25:in `charge!'\n"
        "/app/app/models/order.rb:13:in `fetch': key not found: \"plum\" (KeyError)\n"
        "\tfrom /app/app/models/order.rb:13:in `charge!'\n"
        "Process exited with status 1\n";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.c[0]->nexcs, 2);
    assert_string_equal(r.c[0]->excs[0].type, "KeyError");
    assert_string_equal(r.c[0]->excs[1].type, "ArgumentError");
    assert_int_equal(r.c[0]->excs[1].nframes, 2);
    assert_int_equal(r.c[0]->last_id, 9);
    run_free(&r);
}

static void test_oracle_ruby_error_highlight(void **state)
{
    /* F4: Ruby 3.1's error_highlight snippet is part of the message; the frames after it
     * still belong to the trace. F5: Rails logs the same message over lines, the
     * Logger prefix on the first only. */
    static const char text[] =
        "/app/app/models/order.rb:17:in `customer_name': undefined method `name' for nil:NilClass "
        "(NoMethodError)\n"
        "\n"
        "    customer.name\n"
        "            ^^^^^\n"
        "\tfrom /app/app/controllers/orders_controller.rb:6:in `show'\n"
        "\tfrom /app/bin/crash.rb:58:in `<main>'\n"
        "I, [2026-12-07T03:38:35.220900 #32021]  INFO -- : [4f0c7a8e-11] Completed 500 Internal "
        "Server Error in 3ms\n"
        "F, [2026-12-07T03:38:35.221438 #32021] FATAL -- : [4f0c7a8e-11]   \n"
        "F, [2026-12-07T03:38:35.221438 #32021] FATAL -- : [4f0c7a8e-11] NoMethodError (undefined "
        "method `name' for nil:NilClass\n"
        "\n"
        "    customer.name\n"
        "            ^^^^^):\n"
        "F, [2026-12-07T03:38:35.221438 #32021] FATAL -- : [4f0c7a8e-11]   \n"
        "F, [2026-12-07T03:38:35.221438 #32021] FATAL -- : [4f0c7a8e-11] app/models/order.rb:17:in "
        "`customer_name'\n"
        "F, [2026-12-07T03:38:35.221438 #32021] FATAL -- : [4f0c7a8e-11] "
        "app/controllers/orders_controller.rb:6:in `show'\n";
    static const char value[] =
        "undefined method `name' for nil:NilClass\n\n    customer.name\n            ^^^^^";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 2);
    const struct sl_crash_exc *e = last_exc(r.c[0]);
    assert_string_equal(e->value, value);
    assert_int_equal(e->nframes, 3);
    frame_is(&e->frames[0], "bin/crash.rb", "<main>", 58, true);
    frame_is(&e->frames[2], "app/models/order.rb", "customer_name", 17, true);
    e = last_exc(r.c[1]);
    assert_string_equal(e->type, "NoMethodError");
    assert_string_equal(e->value, value);
    assert_int_equal(e->nframes, 2);
    frame_is(&e->frames[1], "app/models/order.rb", "customer_name", 17, true);
    run_free(&r);
}

static void test_oracle_node_cause_matching(void **state)
{
    /* F6: "... N lines matching cause stack trace ..." stands for the cause's frames after
     * its copy of the frame before it; the cause is chained, root first. */
    static const char text[] =
        "Error: cannot total order 9\n"
        "    at Object.total (/app/lib/orders.js:32:11)\n"
        "    at main (/app/crash.js:41:21)\n"
        "    ... 2 lines matching cause stack trace ...\n"
        "    at node:internal/main/run_main_module:28:49 {\n"
        "  [cause]: RangeError: no price for kiwi\n"
        "      at price (/app/lib/orders.js:24:32)\n"
        "      at main (/app/crash.js:41:21)\n"
        "      at Object.<anonymous> (/app/crash.js:48:1)\n"
        "      at Module._compile (node:internal/modules/cjs/loader:1521:14)\n"
        "      at Module.load (node:internal/modules/cjs/loader:1266:32)\n"
        "}\n"
        "\n"
        "Node.js v20.19.2\n";
    struct run r;
    (void)state;
    run(text, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.c[0]->nexcs, 2);
    assert_string_equal(r.c[0]->excs[0].type, "RangeError");
    assert_int_equal(r.c[0]->excs[0].nframes, 5);
    const struct sl_crash_exc *e = &r.c[0]->excs[1];
    assert_string_equal(e->type, "Error");
    assert_int_equal(e->nframes, 5);
    frame_is(&e->frames[0], "node:internal/main/run_main_module", "?", 28, false);
    frame_is(&e->frames[1], "node:internal/modules/cjs/loader", "Module._compile", 1521, false);
    frame_is(&e->frames[2], "/app/crash.js", "Object.?", 48, true);
    frame_is(&e->frames[3], "/app/crash.js", "main", 41, true);
    frame_is(&e->frames[4], "/app/lib/orders.js", "Object.total", 32, true);
    assert_int_equal(r.c[0]->last_id, 14);
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_basic),
        cmocka_unit_test(test_python_chain),
        cmocka_unit_test(test_python_celery_syntax),
        cmocka_unit_test(test_python_exception_group),
        cmocka_unit_test(test_python_lookalikes),
        cmocka_unit_test(test_go_panic),
        cmocka_unit_test(test_go_shapes),
        cmocka_unit_test(test_ruby_uncaught),
        cmocka_unit_test(test_rails_logger),
        cmocka_unit_test(test_sidekiq),
        cmocka_unit_test(test_node),
        cmocka_unit_test(test_java),
        cmocka_unit_test(test_multiline_messages),
        cmocka_unit_test(test_platform),
        cmocka_unit_test(test_gap_flush_open),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_memory_bounded),
        cmocka_unit_test(test_unicode_and_long_lines),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_event_json),
        cmocka_unit_test(test_event_frame_cap),
        cmocka_unit_test(test_envelope_auth),
        cmocka_unit_test(test_dsn),
        cmocka_unit_test(test_rate_limits),
        cmocka_unit_test(test_anchors),
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_oracle_go_repanic_and_types),
        cmocka_unit_test(test_oracle_messages_over_lines),
        cmocka_unit_test(test_oracle_ruby_thread_twice),
        cmocka_unit_test(test_oracle_ruby_error_highlight),
        cmocka_unit_test(test_oracle_node_cause_matching),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
