/* Crash traces joined back from log lines (include/sluice/crash.h; the design note is
 * docs/internals/crash-assembly.md).
 *
 * Three parts: the per-line anchor the writer runs on every stored line (a few byte
 * compares for an ordinary line); the assembler of ONE (source, procid), a small state
 * machine per language fed lines in time order that parses frames as they come (it keeps
 * no raw lines), closes a trace on its final line, on a gap of silence or on a cap, and
 * hands out finished crashes; and the Sentry side: event JSON, envelope, DSN, auth header
 * and rate limits (https://develop.sentry.dev/sdk/).
 *
 * Frames follow what each official SDK would have sent for the same exception: Python
 * (sentry-python: site-packages/dist-packages and the standard library are not in app),
 * Go (sentry-go: GOROOT, vendor, third_party not in app; runtime and testing frames
 * dropped), Ruby (sentry-ruby: ^(project_root/)?(bin|exe|app|config|lib|test|spec) is in
 * app, project_root taken as Heroku's /app), Node (@sentry/node: node_modules and
 * internals not in app, "Object.?" naming), JVM (java., javax., sun., jdk., kotlin.,
 * scala. not in app). Sentry order: oldest call first; chains root cause first.
 *
 * Pure: no I/O, no globals. Any thread; one assembler is used by one thread at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/crash.h"
#include "sluice/digest.h"
#include "sluice/enc.h"
#include "sluice/utf8.h"

#define ADDLIT(b, lit) sl_buf_add((b), (lit), sizeof(lit) - 1)
#define MAX_EXCS 16      /* exceptions in one chain */
#define STR_CAP 1024     /* bytes kept of a path, function or type */
#define VALUE_CAP 8192   /* bytes kept of an exception value (Sentry keeps 8 KiB too) */
#define EVENT_FRAMES 250 /* frames of one exception in an event: Sentry trims to 250 */

enum verdict {
    V_REJECT = 0, /* the line is not part of the open trace */
    V_ACCEPT,     /* it is */
    V_END,        /* it is, and it is the trace's last line */
    V_IGNORE,     /* not part of it, but leaves it open (another process's logger line) */
};

enum state {
    ST_IDLE = 0,
    PY_CELERY,    /* "Task ... raised unexpected:", the traceback may follow */
    PY_TB,        /* inside "Traceback (most recent call last):" */
    PY_SYNTAX,    /* a bare `  File "x", line N` (SyntaxError of the main script) */
    PY_AFTER,     /* after the exception line: a chain separator may follow */
    PY_SEP,       /* after a chain separator: the next Traceback */
    GO_HEAD,      /* after "panic:" / "fatal error:", before "goroutine N [...]:" */
    GO_FRAMES,    /* frames of the first goroutine */
    GO_REST,      /* other goroutines, "exit status N" */
    RB_THREAD,    /* "#<Thread:0x... run> terminated with exception (...):", a header next */
    RB_UNCAUGHT,  /* the interpreter's "x.rb:1:in 'm': msg (Type)" and "\tfrom" lines */
    RB_RAILS_MSG, /* Rails "Type (msg" whose message goes on over lines until "):" */
    RB_RAILS_PRE, /* Rails "Type (msg):" before its first frame */
    RB_RAILS,     /* Rails frames */
    NODE_CTX,     /* "/app/x.js:10", the source line and caret before the error line */
    NODE_HEAD,    /* the error line, before its first "at" */
    NODE_AT,      /* "    at ..." lines */
    NODE_TAIL,    /* after the frames: properties, blank lines, "Node.js vNN" */
    JAVA_HEAD,    /* the exception line before its first "\tat" */
    JAVA_AT,      /* "\tat", "Caused by:", "... N more", "Suppressed:" */
    PLAT_OPEN,    /* a platform crash: R10/R14/R15 and what follows, or router H10s */
};

struct sl_crash_asm {
    struct sl_crash_limits lim;
    /* the open trace */
    bool open, confirmed, overflow, oom;
    enum state st;
    struct sl_crash *c;
    size_t xcap;              /* capacity of c->excs */
    size_t fcap[MAX_EXCS];    /* capacity of c->excs[i].frames */
    int more[MAX_EXCS];       /* JVM "... N more", Node "... N lines matching cause
                                 stack trace ..." of each exception, printed order */
    size_t more_at[MAX_EXCS]; /* Node: the frame index where those lines stand */
    bool rb_msg_open;         /* Ruby: lines of the message may still follow */
    bool need_at;             /* JVM: an exception line waits for its first "at" */
    bool py_group;            /* Python: an ExceptionGroup's "  | " framed traceback */
    bool line_prefixed;       /* the line being looked at carried a Logger prefix */
    bool rb_repeat;           /* Ruby: the same report printed again (a dead thread's,
                                 then join's): read, not kept */
    char *rb_first;           /* Ruby: the first header line, to know the repeat */
    int msg_blanks;           /* blank lines seen inside a message over lines */
    struct sl_buf pend;       /* JVM, Go: message lines over several lines, kept until
                                 the trace is confirmed (a look-alike's are dropped) */
    size_t idcap, bytes, lines, frames;
    int64_t last_ts;
    int blank_run, ctx_lines, extra_lines, depth;
    bool skip_frames; /* Go: past the first goroutine; JVM: inside Suppressed */
    bool go_have_fn;
    char *go_fn, *go_mod; /* Go: the function line waiting for its location */
    char *py_root;        /* Python: the directory of the main script, if known */
    char *py_main;        /* Python: the main script (its frames are "__main__") */
    char *syn_file;       /* Python: the `File "x", line N` of a SyntaxError */
    int syn_line;
    char rb_pid[24]; /* Ruby logger: "#4" of the line that opened the trace */
    /* crashes completed and not taken yet, oldest first */
    struct sl_crash **done;
    size_t ndone, donecap, donehead;
};

/* ---- small string helpers ------------------------------------------------------------- */

static bool starts(struct sl_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len >= n && memcmp(s.p, lit, n) == 0;
}

static bool ends(struct sl_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len >= n && memcmp(s.p + s.len - n, lit, n) == 0;
}

static struct sl_str skip(struct sl_str s, size_t n)
{
    return sl_str_make(s.p + n, s.len - n);
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static struct sl_str ltrim(struct sl_str s)
{
    size_t i = 0;
    while (i < s.len && is_ws(s.p[i]))
        i++;
    return skip(s, i);
}

static struct sl_str rtrim(struct sl_str s)
{
    while (s.len > 0 && (is_ws(s.p[s.len - 1]) || s.p[s.len - 1] == '\r' || s.p[s.len - 1] == '\n'))
        s.len--;
    return s;
}

static bool blank(struct sl_str s)
{
    return ltrim(s).len == 0;
}

static const char *find(struct sl_str s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len < n || !s.p)
        return NULL;
    return memmem(s.p, s.len, lit, n);
}

static bool all_digits(struct sl_str s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (!sl_ascii_digit((unsigned char)s.p[i]))
            return false;
    return true;
}

static int to_int(struct sl_str s)
{
    long v = 0;
    for (size_t i = 0; i < s.len && sl_ascii_digit((unsigned char)s.p[i]); i++) {
        v = v * 10 + (s.p[i] - '0');
        if (v > 1000000000)
            return 1000000000;
    }
    return (int)v;
}

/* Length of s cut to at most cap bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(struct sl_str s, size_t cap)
{
    size_t n = s.len < cap ? s.len : cap;
    if (n == s.len)
        return n;
    while (n > 0 && ((unsigned char)s.p[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* A NUL-terminated copy of at most cap bytes; NULL and a->oom on allocation failure. */
static char *dup(struct sl_crash_asm *a, struct sl_str s, size_t cap)
{
    size_t n = utf8_cut(s, cap);
    char *p = malloc(n + 1);
    if (!p) {
        a->oom = true;
        return NULL;
    }
    if (n)
        memcpy(p, s.p, n);
    p[n] = '\0';
    return p;
}

static char *dupz(struct sl_crash_asm *a, const char *z)
{
    return dup(a, sl_str_make(z, strlen(z)), STR_CAP);
}

static void set(char **slot, char *v)
{
    free(*slot);
    *slot = v;
}

/* ---- anchors ------------------------------------------------------------------------ */

static const char PY_GROUP[] = "  + Exception Group Traceback (most recent call last):";

/* An identifier-ish first word: letters, digits, _ $ . and (ruby) ':'; returns its length. */
static size_t word_len(struct sl_str s, bool colons)
{
    size_t i = 0;
    while (i < s.len && i < 200) {
        unsigned char c = (unsigned char)s.p[i];
        if (sl_ascii_alnum(c) || c == '_' || c == '$' || c == '.')
            i++;
        else if (colons && c == ':' && i + 1 < s.len && s.p[i + 1] == ':')
            i += 2;
        else
            break;
    }
    return i;
}

static bool word_is_error(struct sl_str w)
{
    return ends(w, "Error") || ends(w, "Exception") || ends(w, "Throwable") ||
           sl_str_eq(w, "Error");
}

/* Ruby logger "E, [2026-11-21T10:00:00.123 #4] ERROR -- progname: " and Rails tags
 * "[6c1e] "; returns the rest, and the "#4" in pid (may be empty). */
/* Sidekiq's log prefix on Heroku (no timestamp there): "pid=4 tid=abc class=X jid=Y WARN: ";
 * the rest after it, and "pid=4 tid=abc" in pid; s as it was when it has none. */
static struct sl_str strip_sidekiq(struct sl_str s, struct sl_str *pid)
{
    static const char *const levels[] = {
        "DEBUG:", "INFO:", "WARN:", "ERROR:", "FATAL:", "UNKNOWN:"};
    size_t i = 0, lim = s.len < 512 ? s.len : 512, pid_end = 0;
    for (int tok = 0; i < lim; tok++) {
        size_t t0 = i;
        while (i < lim && s.p[i] != ' ')
            i++;
        struct sl_str t = sl_str_make(s.p + t0, i - t0);
        if (tok == 0 && !starts(t, "pid="))
            return s;
        if (tok == 1) {
            if (!starts(t, "tid="))
                return s;
            pid_end = i;
        }
        if (tok >= 2)
            for (size_t k = 0; k < sizeof(levels) / sizeof(levels[0]); k++)
                if (sl_str_eq(t, levels[k]) && i < s.len) {
                    *pid = sl_str_make(s.p, pid_end);
                    return skip(s, i + 1);
                }
        if (tok >= 2 && !memchr(t.p, '=', t.len))
            return s;
        i++;
    }
    return s;
}

static struct sl_str strip_prefix(struct sl_str s, struct sl_str *pid)
{
    *pid = SL_STR_NULL;
    if (s.len > 12 && s.p[0] == 'p' && s.p[1] == 'i' && s.p[2] == 'd' && s.p[3] == '=')
        return strip_sidekiq(s, pid);
    if (s.len > 6 && sl_ascii_alpha((unsigned char)s.p[0]) && s.p[1] == ',' && s.p[2] == ' ' &&
        s.p[3] == '[') {
        const char *close = memchr(s.p, ']', s.len < 128 ? s.len : 128);
        if (close) {
            struct sl_str head = sl_str_make(s.p, (size_t)(close - s.p));
            const char *hash = memchr(head.p, '#', head.len);
            struct sl_str rest = sl_str_make(close + 1, s.len - (size_t)(close + 1 - s.p));
            const char *dd = find(sl_str_make(rest.p, rest.len < 64 ? rest.len : 64), " -- ");
            if (dd) {
                const char *colon = memchr(dd + 4, ':', rest.len - (size_t)(dd + 4 - rest.p));
                if (colon) {
                    if (hash)
                        *pid = sl_str_make(hash, (size_t)(close - hash));
                    s = sl_str_make(colon + 1, s.len - (size_t)(colon + 1 - s.p));
                    if (s.len && s.p[0] == ' ')
                        s = skip(s, 1);
                }
            }
        }
    }
    /* Rails tagged logging: "[request-id] " groups without spaces inside. */
    for (int k = 0; k < 4 && s.len > 2 && s.p[0] == '['; k++) {
        size_t i = 1;
        while (i < s.len && i < 80 && s.p[i] != ']' && s.p[i] != ' ')
            i++;
        if (i >= s.len || s.p[i] != ']' || i == 1)
            break;
        i++;
        if (i < s.len && s.p[i] != ' ')
            break;
        s = skip(s, i < s.len ? i + 1 : i);
    }
    return s;
}

static bool is_rails_error(struct sl_str s, size_t *wl);
static bool is_rails_error_open(struct sl_str s, size_t *wl);
static bool is_ruby_plain(struct sl_str s, size_t *wl);
static bool is_ruby_header(struct sl_str s);
static bool any_start(struct sl_str s);
static bool plainly_else(const struct sl_crash_asm *a, struct sl_str s);
static bool plat_start(struct sl_str s, struct sl_str *code, struct sl_str *desc);

enum sl_crash_anchor sl_crash_anchor(struct sl_str app_name, struct sl_str procid,
                                     struct sl_str msg)
{
    if (msg.len < 5 || !msg.p)
        return SL_CRASH_NONE;
    unsigned char c0 = (unsigned char)msg.p[0];

    if (app_name.len == 6 && memcmp(app_name.p, "heroku", 6) == 0) {
        if (c0 == 'E' && starts(msg, "Error R1"))
            return SL_CRASH_PLATFORM;
        if (c0 == 'P' && starts(msg, "Process exited"))
            return SL_CRASH_PLATFORM;
        if (c0 == 'S' && starts(msg, "State changed from ") && ends(rtrim(msg), " crashed"))
            return SL_CRASH_PLATFORM;
        if (c0 == 'a' && starts(msg, "at=error code=H10"))
            return SL_CRASH_PLATFORM;
        return SL_CRASH_NONE;
    }
    if (c0 == 'R' && procid.len == 3 && memcmp(procid.p, "api", 3) == 0 && starts(msg, "Release v"))
        return SL_CRASH_RELEASE;
    switch (c0) {
    case 'T':
        if (starts(msg, "Traceback (most recent call last):"))
            return SL_CRASH_TRACE;
        break;
    case 'p':
        if (starts(msg, "panic: "))
            return SL_CRASH_TRACE;
        break;
    case 'f':
        if (starts(msg, "fatal error: "))
            return SL_CRASH_TRACE;
        break;
    case 'E':
        if (starts(msg, "Exception in thread \""))
            return SL_CRASH_TRACE;
        break;
    case ' ':
        if (starts(msg, "  File \"") || starts(msg, PY_GROUP))
            return SL_CRASH_TRACE;
        return SL_CRASH_NONE;
    case '/':
    case '[':
        break;
    default:
        if (!sl_ascii_alpha(c0))
            return SL_CRASH_NONE;
    }
    if (c0 == '[' || (sl_ascii_alpha(c0) && msg.len > 4 && msg.p[1] == ',' && msg.p[2] == ' ') ||
        (c0 == 'p' && msg.p[1] == 'i' && msg.p[2] == 'd' && msg.p[3] == '=')) {
        struct sl_str pid, body = strip_prefix(msg, &pid);
        if (body.p != msg.p) {
            if (c0 == '[' &&
                find(sl_str_make(msg.p, msg.len < 512 ? msg.len : 512), " raised unexpected: "))
                return SL_CRASH_TRACE;
            size_t wl;
            if (is_rails_error(body, &wl) || is_rails_error_open(body, &wl) ||
                is_ruby_plain(body, &wl) || is_ruby_header(body) ||
                starts(body, "Traceback (most recent call last):"))
                return SL_CRASH_TRACE;
            return SL_CRASH_NONE;
        }
        if (c0 == '[')
            return (starts(msg, "[UnhandledPromiseRejection: ") ||
                    find(sl_str_make(msg.p, msg.len < 512 ? msg.len : 512), " raised unexpected: "))
                       ? SL_CRASH_TRACE
                       : SL_CRASH_NONE;
    }
    /* A first word like "TypeError", "java.lang.IllegalStateException",
     * "ActiveRecord::RecordNotFound", "Uncaught", or a Ruby "x.rb:12:in". */
    struct sl_str m = msg;
    if (starts(m, "Uncaught "))
        m = skip(m, 9);
    size_t wl = word_len(m, true);
    if (wl > 0 && wl < m.len) {
        struct sl_str w = sl_str_make(m.p, wl);
        char next = m.p[wl];
        if ((next == ':' || next == ' ') && word_is_error(w))
            return SL_CRASH_TRACE;
        if (next == ' ' && (is_rails_error(m, &wl) || is_rails_error_open(m, &wl)))
            return SL_CRASH_TRACE;
    }
    if ((c0 == '/' || sl_ascii_alpha(c0)) && is_ruby_header(msg))
        return SL_CRASH_TRACE;
    return SL_CRASH_NONE;
}

/* ---- the crash being built ---------------------------------------------------------- */

static void exc_free(struct sl_crash_exc *e)
{
    for (size_t i = 0; i < e->nframes; i++) {
        free(e->frames[i].filename);
        free(e->frames[i].abs_path);
        free(e->frames[i].function);
        free(e->frames[i].module);
    }
    free(e->frames);
    free(e->type);
    free(e->value);
    free(e->module);
}

void sl_crash_free(struct sl_crash *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nexcs; i++)
        exc_free(&c->excs[i]);
    free(c->excs);
    free(c->message);
    free(c->platform_code);
    free(c->line_ids);
    free(c);
}

static struct sl_crash_exc *cur_exc(struct sl_crash_asm *a)
{
    return a->c && a->c->nexcs ? &a->c->excs[a->c->nexcs - 1] : NULL;
}

/* Start a new exception of the chain (printed order); NULL when the chain is full. */
static struct sl_crash_exc *exc_push(struct sl_crash_asm *a)
{
    struct sl_crash *c = a->c;
    if (c->nexcs >= MAX_EXCS) {
        c->truncated = true;
        return NULL;
    }
    if (c->nexcs == a->xcap) {
        size_t n = a->xcap ? a->xcap * 2 : 2;
        struct sl_crash_exc *x = realloc(c->excs, n * sizeof(*x));
        if (!x) {
            a->oom = true;
            return NULL;
        }
        c->excs = x;
        a->xcap = n;
    }
    struct sl_crash_exc *e = &c->excs[c->nexcs];
    memset(e, 0, sizeof(*e));
    a->fcap[c->nexcs] = 0;
    a->more[c->nexcs] = 0;
    a->more_at[c->nexcs] = 0;
    c->nexcs++;
    return e;
}

/* A new frame at the end of the current exception (printed order), zeroed; NULL when
 * the trace is past its caps (the frame is then not kept) or out of memory. */
static struct sl_crash_frame *frame_push(struct sl_crash_asm *a)
{
    struct sl_crash_exc *e = cur_exc(a);
    if (!e || a->overflow || a->skip_frames) {
        if (e && a->overflow)
            e->frames_omitted = true;
        return NULL;
    }
    if (a->frames >= a->lim.max_lines) {
        a->c->truncated = true;
        e->frames_omitted = true;
        return NULL;
    }
    size_t i = a->c->nexcs - 1;
    if (e->nframes == a->fcap[i]) {
        size_t n = a->fcap[i] ? a->fcap[i] * 2 : 8;
        struct sl_crash_frame *f = realloc(e->frames, n * sizeof(*f));
        if (!f) {
            a->oom = true;
            return NULL;
        }
        e->frames = f;
        a->fcap[i] = n;
    }
    struct sl_crash_frame *f = &e->frames[e->nframes++];
    memset(f, 0, sizeof(*f));
    a->frames++;
    return f;
}

static void exc_set(struct sl_crash_asm *a, struct sl_crash_exc *e, struct sl_str type,
                    struct sl_str value, struct sl_str module)
{
    if (!e)
        return;
    set(&e->type, dup(a, type, STR_CAP));
    set(&e->value, dup(a, value, VALUE_CAP));
    set(&e->module, module.p ? dup(a, module, STR_CAP) : NULL);
}

/* Append "\n" and s to the current exception's value (a message over several lines). */
static void value_append(struct sl_crash_asm *a, struct sl_str s)
{
    struct sl_crash_exc *e = cur_exc(a);
    if (!e || !e->value)
        return;
    size_t ol = strlen(e->value), n = ol + 1 + s.len;
    if (n > VALUE_CAP)
        return;
    char *v = realloc(e->value, n + 1);
    if (!v) {
        a->oom = true;
        return;
    }
    v[ol] = '\n';
    if (s.len)
        memcpy(v + ol + 1, s.p, s.len);
    v[n] = '\0';
    e->value = v;
}

/* A line of a message that may go on over lines, before the trace is confirmed: kept in
 * pend (at most VALUE_CAP bytes and 10 lines); false when it cannot be one. */
static bool pend_add(struct sl_crash_asm *a, struct sl_str s)
{
    if (a->extra_lines >= 10 || blank(s) || plainly_else(a, s))
        return false;
    a->extra_lines++;
    if (a->pend.len + 1 >= VALUE_CAP)
        return true; /* the line belongs, the value keeps what it has */
    int rc = a->pend.len ? sl_buf_addc(&a->pend, '\n') : 0;
    if (rc == 0)
        rc = sl_buf_add(&a->pend, s.p, utf8_cut(s, VALUE_CAP - 1 - a->pend.len));
    if (rc == SL_ENOMEM)
        a->oom = true;
    return true;
}

/* The kept message lines join the current exception's value. */
static void pend_flush(struct sl_crash_asm *a)
{
    if (a->pend.len)
        value_append(a, sl_str_make(a->pend.p, a->pend.len));
    sl_buf_reset(&a->pend);
    a->extra_lines = 0;
}

/* A line that is plainly not the rest of an exception message: another trace's start, a
 * logger's line (a level word, a timestamp, a bracket, a brace, logfmt), an access log, or
 * one of Heroku's own lines. What is left may be a message line (Python and Ruby print a
 * message over lines after the type). */
static bool plainly_else(const struct sl_crash_asm *a, struct sl_str s)
{
    static const char *const words[] = {
        "INFO", "DEBUG", "WARN", "WARNING", "ERROR", "CRITICAL", "FATAL", "TRACE", "NOTICE",
        "info", "debug", "warn", "warning", "error", "critical", "fatal", "trace", "notice",
    };
    static const char *const heroku[] = {
        "Process exited",  "State changed", "Stopping ", "Starting process",
        "Process running", "Release v",     "Deploy ",   "Build ",
        "Scaled to",       "Restarting",    "Idling",    "Cycling",
    };
    if (a->line_prefixed || s.len == 0)
        return a->line_prefixed;
    unsigned char c0 = (unsigned char)s.p[0];
    if (c0 == '[' || c0 == '{' || c0 == '"' || sl_ascii_digit(c0))
        return true;
    size_t w = 0;
    while (w < s.len && (sl_ascii_alnum((unsigned char)s.p[w]) || s.p[w] == '_' || s.p[w] == '#' ||
                         s.p[w] == '.' || s.p[w] == '-'))
        w++;
    if (w < s.len && s.p[w] == '=')
        return true; /* logfmt: level=info msg=... */
    struct sl_str word = sl_str_make(s.p, w);
    if (w < s.len && (s.p[w] == ' ' || s.p[w] == ':' || s.p[w] == ']' || s.p[w] == '|'))
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
            if (sl_str_eq(word, words[i]))
                return true;
    for (size_t i = 0; i < sizeof(heroku) / sizeof(heroku[0]); i++)
        if (starts(s, heroku[i]))
            return true;
    struct sl_str code, desc;
    return plat_start(s, &code, &desc) || any_start(s);
}

/* A message line after the exception line: the blank lines seen before it join too. */
static void msg_line(struct sl_crash_asm *a, struct sl_str s)
{
    for (; a->msg_blanks > 0; a->msg_blanks--)
        value_append(a, SL_STR_LIT(""));
    value_append(a, s);
}

/* Drop trailing newlines and spaces of the current exception's value. */
static void value_trim(struct sl_crash_asm *a)
{
    struct sl_crash_exc *e = cur_exc(a);
    if (!e || !e->value)
        return;
    size_t n = strlen(e->value);
    while (n > 0 && (e->value[n - 1] == '\n' || e->value[n - 1] == ' ' || e->value[n - 1] == '\r'))
        e->value[--n] = '\0';
}

/* ---- Python ------------------------------------------------------------------------- */

static const char PY_TRACEBACK[] = "Traceback (most recent call last):";

/* "  File "/app/x.py", line 12, in handler" (func may be absent: SyntaxError location). */
static bool py_file_line(struct sl_str s, struct sl_str *path, int *lineno, struct sl_str *func)
{
    struct sl_str t = ltrim(s);
    if (t.len == s.len || !starts(t, "File \""))
        return false;
    t = skip(t, 6);
    const char *q = find(t, "\", line ");
    if (!q)
        return false;
    *path = sl_str_make(t.p, (size_t)(q - t.p));
    t = skip(t, (size_t)(q - t.p) + 8);
    size_t i = 0;
    while (i < t.len && sl_ascii_digit((unsigned char)t.p[i]))
        i++;
    if (i == 0)
        return false;
    *lineno = to_int(sl_str_make(t.p, i));
    t = skip(t, i);
    *func = SL_STR_NULL;
    if (starts(t, ", in ")) {
        *func = skip(t, 5);
        return true;
    }
    return t.len == 0;
}

/* "KeyError: 'x'", "requests.exceptions.ConnectionError: ...", "StopIteration". */
static bool py_exc_line(struct sl_str s, struct sl_str *type, struct sl_str *value)
{
    if (s.len == 0 || !(sl_ascii_alpha((unsigned char)s.p[0]) || s.p[0] == '_'))
        return false;
    size_t i = 0;
    while (i < s.len && (sl_ascii_alnum((unsigned char)s.p[i]) || s.p[i] == '_' || s.p[i] == '.'))
        i++;
    if (i < s.len && !(s.p[i] == ':' && (i + 1 == s.len || s.p[i + 1] == ' ')))
        return false;
    *type = sl_str_make(s.p, i);
    if (type->p[i - 1] == '.')
        return false;
    /* the class name: CapWords, or a module-qualified name (socket.timeout) */
    const char *dot = NULL;
    for (size_t k = 0; k < i; k++)
        if (s.p[k] == '.')
            dot = s.p + k;
    const char *last = dot ? dot + 1 : s.p;
    if (!dot && !(*last >= 'A' && *last <= 'Z'))
        return false;
    *value = i + 2 <= s.len ? skip(s, i + 2) : sl_str_make(s.p + s.len, 0);
    return true;
}

static bool py_stdlib(struct sl_str path, size_t *rel)
{
    const char *p = find(path, "/lib/python");
    if (!p)
        return false;
    struct sl_str t = sl_str_make(p + 11, path.len - (size_t)(p + 11 - path.p));
    size_t i = 0;
    while (i < t.len && (sl_ascii_digit((unsigned char)t.p[i]) || t.p[i] == '.'))
        i++;
    if (i == 0 || i >= t.len || t.p[i] != '/')
        return false;
    *rel = (size_t)(t.p + i + 1 - path.p);
    return true;
}

static char *py_module(struct sl_crash_asm *a, struct sl_str rel)
{
    if (ends(rel, ".py"))
        rel.len -= 3;
    if (ends(rel, "/__init__"))
        rel.len -= 9;
    if (rel.len == 0 || rel.p[0] == '<')
        return NULL;
    char *m = dup(a, rel, STR_CAP);
    if (m)
        for (char *q = m; *q; q++)
            if (*q == '/')
                *q = '.';
    return m;
}

static void py_frame(struct sl_crash_asm *a, struct sl_str path, int lineno, struct sl_str func)
{
    struct sl_crash_exc *e = cur_exc(a);
    bool first = a->c->nexcs == 1 && e && e->nframes == 0 && !a->overflow;
    struct sl_crash_frame *f = frame_push(a);
    if (!f)
        return;
    f->abs_path = dup(a, path, STR_CAP);
    f->function = dup(a, func, STR_CAP);
    f->lineno = lineno;
    size_t rel = 0;
    const char *sp = find(path, "/site-packages/");
    if (!sp)
        sp = find(path, "/dist-packages/");
    if (sp) {
        rel = (size_t)(sp - path.p) + 15; /* both names are 15 bytes */
        f->in_app = false;
    } else if (py_stdlib(path, &rel) || (path.len && path.p[0] == '<')) {
        f->in_app = false;
    } else {
        f->in_app = true;
        if (path.len && path.p[0] != '/') {
            rel = 0;
        } else {
            if (first && sl_str_eq(func, "<module>")) {
                /* the main script: its directory is sys.path[0] */
                const char *slash = NULL;
                for (size_t k = 0; k < path.len; k++)
                    if (path.p[k] == '/')
                        slash = path.p + k;
                if (slash && !a->py_root) {
                    a->py_root = dup(a, sl_str_make(path.p, (size_t)(slash - path.p) + 1), STR_CAP);
                    a->py_main = dup(a, path, STR_CAP);
                }
            }
            if (a->py_root && starts(path, a->py_root))
                rel = strlen(a->py_root);
            else if (starts(path, "/app/"))
                rel = 5;
            else {
                for (size_t k = 0; k < path.len; k++)
                    if (path.p[k] == '/')
                        rel = k + 1;
            }
        }
    }
    struct sl_str r = skip(path, rel);
    f->filename = dup(a, r, STR_CAP);
    if (a->py_main && sl_str_eq(path, a->py_main))
        f->module = dupz(a, "__main__");
    else
        f->module = py_module(a, r);
}

/* "[Previous line repeated N more times]": Python folds N more copies of the frame just
 * before it (a recursion); the SDK has them all, oldest first. Past the caps the rest is
 * marked omitted. */
static void py_repeat(struct sl_crash_asm *a, int n)
{
    struct sl_crash_exc *e = cur_exc(a);
    if (!e || e->nframes == 0 || n <= 0) {
        if (e)
            e->frames_omitted = true;
        return;
    }
    for (int i = 0; i < n && !a->oom; i++) {
        size_t last = e->nframes - 1;
        struct sl_crash_frame *f = frame_push(a); /* may move e->frames */
        if (!f)
            return;
        const struct sl_crash_frame *src = &e->frames[last];
        f->lineno = src->lineno;
        f->colno = src->colno;
        f->in_app = src->in_app;
        f->filename = src->filename ? dupz(a, src->filename) : NULL;
        f->abs_path = src->abs_path ? dupz(a, src->abs_path) : NULL;
        f->function = src->function ? dupz(a, src->function) : NULL;
        f->module = src->module ? dupz(a, src->module) : NULL;
    }
}

static void py_exception(struct sl_crash_asm *a, struct sl_str type, struct sl_str value)
{
    struct sl_crash_exc *e = cur_exc(a);
    if (!e || e->type) /* a second exception line: a fresh exception (no frames) */
        e = exc_push(a);
    if (!e)
        return;
    const char *dot = NULL;
    for (size_t k = 0; k < type.len; k++)
        if (type.p[k] == '.')
            dot = type.p + k;
    struct sl_str mod = dot ? sl_str_make(type.p, (size_t)(dot - type.p)) : SL_STR_LIT("builtins");
    struct sl_str name = dot ? sl_str_make(dot + 1, type.len - (size_t)(dot + 1 - type.p)) : type;
    if (a->syn_file && (sl_str_eq(name, "SyntaxError") || sl_str_eq(name, "IndentationError") ||
                        sl_str_eq(name, "TabError"))) {
        /* str(SyntaxError): "invalid syntax (x.py, line 3)" */
        const char *base = strrchr(a->syn_file, '/');
        base = base ? base + 1 : a->syn_file;
        size_t n = value.len + strlen(base) + 32;
        char *v = malloc(n);
        if (!v) {
            a->oom = true;
            return;
        }
        snprintf(v, n, "%.*s (%s, line %d)", (int)utf8_cut(value, VALUE_CAP), value.p, base,
                 a->syn_line);
        exc_set(a, e, name, SL_STR_NULL, mod);
        set(&e->value, v);
    } else {
        exc_set(a, e, name, value, mod);
    }
    set(&a->syn_file, NULL);
    a->confirmed = true;
}

/* "Task validations.tasks.run[0b1c...] raised unexpected: KeyError('energyplus')" */
static bool py_celery(struct sl_str s, struct sl_str *type, struct sl_str *value)
{
    const char *r = find(sl_str_make(s.p, s.len < 1024 ? s.len : 1024), " raised unexpected: ");
    if (!r || !find(sl_str_make(s.p, (size_t)(r - s.p)), "Task "))
        return false;
    struct sl_str t = sl_str_make(r + 20, s.len - (size_t)(r + 20 - s.p));
    size_t i = 0;
    while (i < t.len && (sl_ascii_alnum((unsigned char)t.p[i]) || t.p[i] == '_' || t.p[i] == '.'))
        i++;
    if (i == 0)
        return false;
    *type = sl_str_make(t.p, i);
    *value = skip(t, i);
    if (value->len >= 2 && value->p[0] == '(' && value->p[value->len - 1] == ')') {
        *value = sl_str_make(value->p + 1, value->len - 2);
        if (value->len >= 2 && (value->p[0] == '\'' || value->p[0] == '"') &&
            value->p[value->len - 1] == value->p[0] && !sl_str_eq(*type, "KeyError"))
            *value = sl_str_make(value->p + 1, value->len - 2);
    }
    return true;
}

static enum verdict py_step(struct sl_crash_asm *a, struct sl_str s)
{
    struct sl_str path, func, type, value;
    int lineno;

    if (a->py_group) {
        /* Python 3.11's ExceptionGroup: the group's own traceback behind "  | ", then its
         * sub-exceptions boxed in "+-+---- 1 ----" / "    | " (not part of the chain) */
        if (a->st == PY_TB && starts(s, "  | "))
            s = skip(s, 4);
        else if (a->st == PY_AFTER &&
                 (starts(s, "    |") || starts(s, "  +-") || starts(s, "    +-")))
            return V_ACCEPT;
        else if (a->st == PY_TB && starts(s, "  |"))
            return V_ACCEPT;
        else
            return V_REJECT;
    }

    switch (a->st) {
    case PY_CELERY:
        if (starts(s, PY_TRACEBACK)) {
            a->st = PY_TB;
            /* the traceback's exception line names the type again: start clean */
            struct sl_crash_exc *e = cur_exc(a);
            if (e) {
                set(&e->type, NULL);
                set(&e->value, NULL);
                set(&e->module, NULL);
            }
            return V_ACCEPT;
        }
        return V_REJECT;
    case PY_TB:
    case PY_SYNTAX:
        if (py_file_line(s, &path, &lineno, &func)) {
            if (func.p) {
                if (a->st == PY_SYNTAX)
                    return V_REJECT;
                py_frame(a, path, lineno, func);
                a->confirmed = true;
            } else {
                set(&a->syn_file, dup(a, path, STR_CAP));
                a->syn_line = lineno;
            }
            return V_ACCEPT;
        }
        if (s.len && is_ws(s.p[0])) {
            struct sl_str t = ltrim(s);
            if (starts(t, "[Previous line repeated ") && cur_exc(a))
                py_repeat(a, to_int(skip(t, 24)));
            return V_ACCEPT;
        }
        if (blank(s))
            return V_ACCEPT;
        if (py_exc_line(s, &type, &value)) {
            if (a->st == PY_SYNTAX && !ends(type, "Error"))
                return V_REJECT;
            py_exception(a, type, value);
            a->st = PY_AFTER;
            return V_ACCEPT;
        }
        return V_REJECT;
    case PY_AFTER:
        if (blank(s)) {
            a->msg_blanks++;
            return V_ACCEPT;
        }
        if (starts(s, "During handling of the above exception, another exception occurred:") ||
            starts(s, "The above exception was the direct cause of the following exception:")) {
            a->st = PY_SEP;
            a->msg_blanks = 0;
            return V_ACCEPT;
        }
        /* the message's other lines: str(e) over several lines */
        if (!a->py_group && !plainly_else(a, s) && a->extra_lines++ < 20) {
            msg_line(a, s);
            return V_ACCEPT;
        }
        return V_REJECT;
    case PY_SEP:
        if (blank(s))
            return V_ACCEPT;
        if (starts(s, PY_TRACEBACK)) {
            exc_push(a);
            a->st = PY_TB;
            a->extra_lines = 0;
            return V_ACCEPT;
        }
        return V_REJECT;
    default:
        return V_REJECT;
    }
}

/* ---- Go ----------------------------------------------------------------------------- */

/* sentry-go's packageName: the package is everything up to the first '.' after the last
 * '/'; "go." and "type." symbols have none. */
static void go_split(struct sl_str name, struct sl_str *pkg, struct sl_str *fn)
{
    *pkg = SL_STR_NULL;
    *fn = name;
    if (starts(name, "go.") || starts(name, "type."))
        return;
    size_t pathend = 0;
    for (size_t i = 0; i < name.len; i++)
        if (name.p[i] == '/')
            pathend = i;
    const char *dot = memchr(name.p + pathend, '.', name.len - pathend);
    if (!dot)
        return;
    *pkg = sl_str_make(name.p, (size_t)(dot - name.p));
    *fn = sl_str_make(dot + 1, name.len - (size_t)(dot + 1 - name.p));
}

/* A function line: "main.handler(0x1, {0x2, 0x3})" or "panic({0x4a1b20?, 0x5d3f40?})";
 * the name without its arguments. */
static bool go_func_line(struct sl_str s, struct sl_str *name)
{
    if (s.len < 3 || is_ws(s.p[0]) || s.p[s.len - 1] != ')')
        return false;
    int depth = 0;
    for (size_t i = s.len; i-- > 0;) {
        if (s.p[i] == ')')
            depth++;
        else if (s.p[i] == '(' && --depth == 0) {
            if (i == 0)
                return false;
            *name = sl_str_make(s.p, i);
            for (size_t k = 0; k < i; k++)
                if (s.p[k] == ' ')
                    return false;
            return true;
        }
    }
    return false;
}

/* "\t/app/main.go:42 +0x1d" (the offset and GOTRACEBACK=system's fp= sp= are optional). */
static bool go_loc_line(struct sl_str s, struct sl_str *path, int *lineno)
{
    if (s.len < 4 || !is_ws(s.p[0]))
        return false;
    struct sl_str t = ltrim(s);
    const char *sp = memchr(t.p, ' ', t.len);
    struct sl_str head = sp ? sl_str_make(t.p, (size_t)(sp - t.p)) : t;
    const char *colon = NULL;
    for (size_t i = 0; i < head.len; i++)
        if (head.p[i] == ':')
            colon = head.p + i;
    if (!colon || colon == head.p)
        return false;
    struct sl_str num = sl_str_make(colon + 1, head.len - (size_t)(colon + 1 - head.p));
    if (!all_digits(num))
        return false;
    *path = sl_str_make(head.p, (size_t)(colon - head.p));
    *lineno = to_int(num);
    return true;
}

static bool go_goroot(struct sl_str path)
{
    if (find(path, "/pkg/mod/"))
        return false;
    return find(path, "/go/src/") || starts(path, "/usr/local/go/") ||
           starts(path, "/usr/lib/go") || starts(path, "/usr/share/go") || find(path, "/goroot/");
}

static void go_frame(struct sl_crash_asm *a, struct sl_str path, int lineno)
{
    const char *mod = a->go_mod ? a->go_mod : "";
    const char *fn = a->go_fn ? a->go_fn : "";
    a->go_have_fn = false;
    /* sentry-go drops the runtime's and testing's frames (and its own) */
    if (strcmp(mod, "runtime") == 0 || strcmp(mod, "testing") == 0 ||
        strncmp(mod, "github.com/getsentry/sentry-go", 30) == 0 ||
        (!*mod && strcmp(fn, "panic") == 0))
        return;
    struct sl_crash_frame *f = frame_push(a);
    if (!f)
        return;
    if (path.len && path.p[0] == '/')
        f->abs_path = dup(a, path, STR_CAP);
    else
        f->filename = dup(a, path, STR_CAP);
    f->lineno = lineno;
    if (*mod)
        f->module = dupz(a, mod);
    f->function = dupz(a, fn);
    if (strcmp(mod, "main") == 0)
        f->in_app = true;
    else
        f->in_app = !(go_goroot(path) || strstr(mod, "vendor") || strstr(mod, "third_party"));
}

/* The runtime's plainError panics (printed without "runtime error: "). */
static bool go_plain_error(struct sl_str msg)
{
    static const char *const plain[] = {
        "assignment to entry in nil map",  "close of nil channel",
        "close of closed channel",         "send on closed channel",
        "makeslice: len out of range",     "makeslice: cap out of range",
        "makechan: size out of range",     "growslice: len out of range",
        "makemap: size out of range",      "unsafe.Slice: len out of range",
        "unsafe.String: len out of range",
    };
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        if (sl_str_eq(msg, plain[i]))
            return true;
    return false;
}

static void go_panic_line(struct sl_crash_asm *a, struct sl_str msg, bool fatal)
{
    struct sl_crash_exc *e = exc_push(a);
    if (!e)
        return;
    msg = rtrim(msg);
    if (ends(msg, " [recovered]"))
        msg.len -= 12;
    else if (ends(msg, " [recovered, repanicked]"))
        msg.len -= 24;
    /* the reflect type sentry-go reports; it sets no module apart */
    struct sl_str type;
    if (fatal)
        type = SL_STR_LIT("fatal error");
    else if (starts(msg, "runtime error: index out of range") ||
             starts(msg, "runtime error: slice bounds out of range"))
        type = SL_STR_LIT("runtime.boundsError");
    else if (starts(msg, "interface conversion: "))
        type = SL_STR_LIT("*runtime.TypeAssertionError");
    else if (starts(msg, "runtime error: "))
        /* errorString: nil dereference, divide by zero, overflow, shifts, unhashable */
        type = SL_STR_LIT("runtime.errorString");
    else if (go_plain_error(msg))
        type = SL_STR_LIT("runtime.plainError");
    else
        type = SL_STR_LIT("panic");
    exc_set(a, e, type, msg, SL_STR_NULL);
}

static enum verdict go_step(struct sl_crash_asm *a, struct sl_str s)
{
    struct sl_str name, path;
    int lineno;

    if (a->st == GO_HEAD) {
        if (blank(s) || starts(s, "[signal ") || starts(s, "runtime stack:"))
            return V_ACCEPT;
        if (starts(s, "panic: ") || starts(ltrim(s), "panic: ")) {
            /* "panic: A [recovered]" then "\tpanic: A": the same value panicked again
             * (sentry-go's Recover-then-repanic); one exception. "\tpanic: B": B was
             * raised while A unwound, A is its cause. */
            struct sl_str v = rtrim(skip(ltrim(s), 7));
            struct sl_crash_exc *e = cur_exc(a);
            if (ends(v, " [recovered]"))
                v.len -= 12;
            if (e && e->value && strlen(e->value) == v.len && memcmp(e->value, v.p, v.len) == 0)
                return V_ACCEPT;
            go_panic_line(a, skip(ltrim(s), 7), false);
            return V_ACCEPT;
        }
        if (starts(s, "goroutine ") && s.len > 10 && sl_ascii_digit((unsigned char)s.p[10]) &&
            ends(s, "]:")) {
            a->st = GO_FRAMES;
            a->confirmed = true;
            pend_flush(a);
            return V_ACCEPT;
        }
        /* runtime frames of "runtime stack:" (fatal errors) before the goroutine */
        if (go_func_line(s, &name) || go_loc_line(s, &path, &lineno))
            return V_ACCEPT;
        /* a panic value printed over several lines */
        if (cur_exc(a) && cur_exc(a)->nframes == 0 && pend_add(a, s))
            return V_ACCEPT;
        return V_REJECT;
    }
    if (starts(s, "exit status "))
        return V_END;
    if (blank(s)) {
        if (a->st == GO_FRAMES)
            a->st = GO_REST;
        return V_ACCEPT;
    }
    if (starts(s, "goroutine ") && ends(s, "]:")) {
        a->st = GO_REST;
        return V_ACCEPT;
    }
    if (starts(s, "created by ")) {
        a->go_have_fn = false;
        a->skip_frames = true; /* its location line is not a frame of the panic */
        return V_ACCEPT;
    }
    if (starts(s, "...additional frames elided...")) {
        if (cur_exc(a))
            cur_exc(a)->frames_omitted = true;
        return V_ACCEPT;
    }
    if (go_loc_line(s, &path, &lineno)) {
        if (a->st == GO_FRAMES && a->go_have_fn && !a->skip_frames)
            go_frame(a, path, lineno);
        a->skip_frames = false;
        a->go_have_fn = false;
        return V_ACCEPT;
    }
    if (go_func_line(s, &name)) {
        if (a->st == GO_FRAMES) {
            struct sl_str pkg, fn;
            go_split(name, &pkg, &fn);
            set(&a->go_mod, pkg.p ? dup(a, pkg, STR_CAP) : NULL);
            set(&a->go_fn, dup(a, fn, STR_CAP));
            a->go_have_fn = true;
        }
        return V_ACCEPT;
    }
    return V_REJECT;
}

/* ---- Ruby --------------------------------------------------------------------------- */

struct rb_loc {
    struct sl_str file, module, method;
    int lineno;
};

/* sentry-ruby's RUBY_INPUT_FORMAT:
 *   ^\s*(?:[a-zA-Z]:|uri:classloader:)?([^:]+|<.*>):(\d+)(?::in\s('|`)(?:([\w:]+)#)?([^']+)')?
 * Returns the bytes consumed (> 0), 0 when s is no frame. */
static size_t rb_loc(struct sl_str s, struct rb_loc *l)
{
    size_t i = 0;
    memset(l, 0, sizeof(*l));
    while (i < s.len && is_ws(s.p[i]))
        i++;
    if (i + 1 < s.len && sl_ascii_alpha((unsigned char)s.p[i]) && s.p[i + 1] == ':')
        i += 2;
    else if (s.len - i > 16 && memcmp(s.p + i, "uri:classloader:", 16) == 0)
        i += 16;
    size_t file0 = i;
    while (i < s.len && s.p[i] != ':')
        i++;
    if (i == file0 || i >= s.len)
        return 0;
    l->file = sl_str_make(s.p + file0, i - file0);
    i++;
    size_t d0 = i;
    while (i < s.len && sl_ascii_digit((unsigned char)s.p[i]))
        i++;
    if (i == d0)
        return 0;
    l->lineno = to_int(sl_str_make(s.p + d0, i - d0));
    if (s.len - i >= 6 && memcmp(s.p + i, ":in ", 4) == 0 &&
        (s.p[i + 4] == '\'' || s.p[i + 4] == '`')) {
        size_t m0 = i + 5, k = m0;
        while (k < s.len && s.p[k] != '\'')
            k++;
        if (k >= s.len || k == m0)
            return 0;
        struct sl_str meth = sl_str_make(s.p + m0, k - m0);
        size_t w = 0;
        while (w < meth.len &&
               (sl_ascii_alnum((unsigned char)meth.p[w]) || meth.p[w] == '_' || meth.p[w] == ':'))
            w++;
        if (w > 0 && w < meth.len && meth.p[w] == '#') {
            l->module = sl_str_make(meth.p, w);
            meth = skip(meth, w + 1);
        }
        l->method = meth;
        i = k + 1;
    }
    return i;
}

static bool rb_const(struct sl_str w)
{
    if (w.len == 0 || !(w.p[0] >= 'A' && w.p[0] <= 'Z'))
        return false;
    for (size_t i = 0; i < w.len; i++) {
        unsigned char c = (unsigned char)w.p[i];
        if (!(sl_ascii_alnum(c) || c == '_' || c == ':'))
            return false;
    }
    return true;
}

/* "x.rb:12:in 'foo': message (RuntimeError)": a frame, then ": " and the message. */
static bool rb_header(struct sl_str s, struct rb_loc *l, struct sl_str *type, struct sl_str *value)
{
    if (s.len == 0 || is_ws(s.p[0]))
        return false;
    size_t n = rb_loc(s, l);
    if (n == 0 || !l->method.p || n + 2 > s.len || s.p[n] != ':' || s.p[n + 1] != ' ')
        return false;
    struct sl_str rest = skip(s, n + 2);
    *type = SL_STR_LIT("RuntimeError");
    *value = rest;
    if (rest.len > 2 && rest.p[rest.len - 1] == ')') {
        for (size_t k = rest.len - 1; k-- > 0;) {
            if (rest.p[k] == '(') {
                struct sl_str t = sl_str_make(rest.p + k + 1, rest.len - k - 2);
                if (rb_const(t)) {
                    *type = t;
                    *value = rtrim(sl_str_make(rest.p, k));
                }
                break;
            }
        }
    } else if (sl_str_eq(rest, "unhandled exception")) {
        *value = SL_STR_LIT("");
    }
    return true;
}

static bool is_ruby_header(struct sl_str s)
{
    struct rb_loc l;
    struct sl_str t, v;
    /* the first ':' before any space ends in ".rb" (cheap on ordinary lines, whose first
     * space comes early) */
    size_t i = 0, lim = s.len < 300 ? s.len : 300;
    while (i < lim && s.p[i] != ':' && s.p[i] != ' ')
        i++;
    if (i >= lim || s.p[i] != ':' || i < 3 || memcmp(s.p + i - 3, ".rb", 3) != 0)
        return false;
    return rb_header(s, &l, &t, &v);
}

/* Rails: "NoMethodError (undefined method `name' for nil):" */
static bool is_rails_error(struct sl_str s, size_t *wl)
{
    size_t n = word_len(s, true);
    *wl = n;
    if (n == 0 || n + 3 > s.len || s.p[n] != ' ' || s.p[n + 1] != '(' || !ends(rtrim(s), "):"))
        return false;
    return rb_const(sl_str_make(s.p, n));
}

/* Rails' "NoMethodError (undefined method `name' for nil" whose message goes on over
 * lines: an exception-looking class ("...Error", "...Exception", a namespaced one) and
 * " (" with no "):" at the end of the line. */
static bool is_rails_error_open(struct sl_str s, size_t *wl)
{
    size_t n = word_len(s, true);
    *wl = n;
    if (n == 0 || n + 3 > s.len || s.p[n] != ' ' || s.p[n + 1] != '(' || ends(rtrim(s), "):"))
        return false;
    struct sl_str w = sl_str_make(s.p, n);
    return rb_const(w) && (word_is_error(w) || find(w, "::"));
}

/* "NoMethodError: undefined method ..." logged by Sidekiq's error handler or a rescue
 * (`logger.warn "#{e.class}: #{e.message}"`, then the backtrace): an exception-looking
 * Ruby class, ": ", the message. Only after a logger's prefix (Node prints the same). */
static bool is_ruby_plain(struct sl_str s, size_t *wl)
{
    size_t n = word_len(s, true);
    *wl = n;
    if (n == 0 || n + 1 > s.len || s.p[n] != ':' || (n + 1 < s.len && s.p[n + 1] != ' '))
        return false;
    struct sl_str w = sl_str_make(s.p, n);
    return rb_const(w) && (word_is_error(w) || find(w, "::"));
}

static void rb_frame(struct sl_crash_asm *a, const struct rb_loc *l)
{
    struct sl_crash_frame *f = frame_push(a);
    if (!f)
        return;
    struct sl_str file = l->file;
    f->abs_path = dup(a, file, STR_CAP);
    f->lineno = l->lineno;
    if (l->method.p)
        f->function = dup(a, l->method, STR_CAP);
    if (l->module.p)
        f->module = dup(a, l->module, STR_CAP);
    /* Rails' cleaned backtrace names gems "actionpack (7.0.4) lib/x.rb" */
    const char *gem = find(file, ") ");
    if (gem && memchr(file.p, '(', (size_t)(gem - file.p)) &&
        !memchr(file.p, '/', (size_t)(gem - file.p))) {
        struct sl_str r = sl_str_make(gem + 2, file.len - (size_t)(gem + 2 - file.p));
        if (starts(r, "lib/"))
            r = skip(r, 4);
        f->filename = dup(a, r, STR_CAP);
        f->in_app = false;
        return;
    }
    struct sl_str rel = file;
    bool under_root = starts(file, "/app/");
    if (under_root)
        rel = skip(file, 5);
    static const char *const dirs[] = {"bin", "exe", "app", "config", "lib", "test", "spec"};
    f->in_app = false;
    if (under_root || (file.len && file.p[0] != '/'))
        for (size_t k = 0; k < sizeof(dirs) / sizeof(dirs[0]); k++)
            if (starts(rel, dirs[k]))
                f->in_app = true;
    /* the file relative to its load path, as sentry-ruby's compute_filename */
    const char *g = find(file, "/gems/");
    const char *lib =
        g ? find(sl_str_make(g + 6, file.len - (size_t)(g + 6 - file.p)), "/lib/") : NULL;
    const char *rl = find(file, "/lib/ruby/");
    if (under_root && f->in_app) {
        f->filename = dup(a, rel, STR_CAP);
    } else if (lib) {
        f->filename = dup(a, sl_str_make(lib + 5, file.len - (size_t)(lib + 5 - file.p)), STR_CAP);
    } else if (rl) {
        struct sl_str t = sl_str_make(rl + 10, file.len - (size_t)(rl + 10 - file.p));
        const char *sl = memchr(t.p, '/', t.len); /* the version or vendor_ruby directory */
        f->filename = sl ? dup(a, sl_str_make(sl + 1, t.len - (size_t)(sl + 1 - t.p)), STR_CAP)
                         : dup(a, t, STR_CAP);
    } else {
        f->filename = dup(a, rel, STR_CAP);
    }
}

static enum verdict rb_step(struct sl_crash_asm *a, struct sl_str s)
{
    struct rb_loc l;
    struct sl_str type, value;

    if (a->st == RB_THREAD) {
        if (!rb_header(s, &l, &type, &value))
            return V_REJECT;
        exc_set(a, exc_push(a), type, value, SL_STR_NULL);
        rb_frame(a, &l);
        a->rb_first = dup(a, rtrim(s), STR_CAP);
        a->confirmed = a->rb_msg_open = true;
        a->st = RB_UNCAUGHT;
        return V_ACCEPT;
    }
    if (a->st == RB_UNCAUGHT) {
        struct sl_str t = ltrim(s);
        if (!blank(s) && rb_header(s, &l, &type, &value)) {
            /* Ruby prints a dead thread's report, then the same again when join re-raises
             * it and it ends the program: one crash, the repeat read and not kept */
            struct sl_str r = rtrim(s);
            if (a->rb_repeat ||
                (a->rb_first && strlen(a->rb_first) == r.len && !memcmp(a->rb_first, r.p, r.len))) {
                a->rb_repeat = a->skip_frames = true;
                a->rb_msg_open = false;
                return V_ACCEPT;
            }
        }
        if (a->rb_repeat && (t.len < s.len || blank(s) || !plainly_else(a, s)))
            return V_ACCEPT; /* the repeat's from lines and message lines */
        if (t.len < s.len && starts(t, "from ")) {
            if (rb_loc(skip(t, 5), &l) == t.len - 5) {
                if (a->rb_msg_open)
                    value_trim(a);
                a->rb_msg_open = false;
                a->msg_blanks = 0;
                rb_frame(a, &l);
                return V_ACCEPT;
            }
            return V_REJECT;
        }
        if (a->rb_msg_open && !blank(s) && rb_header(s, &l, &type, &value))
            goto cause;
        /* the rest of a message over several lines (error_highlight's snippet, a message
         * with newlines): Ruby prints its first line, " (Type)", then the others */
        if (a->rb_msg_open && (blank(s) || !plainly_else(a, s)) && a->extra_lines++ < 20) {
            if (blank(s))
                a->msg_blanks++;
            else
                msg_line(a, s);
            return V_ACCEPT;
        }
        if (t.len < s.len && starts(t, "... ") && ends(t, " levels...")) {
            if (cur_exc(a))
                cur_exc(a)->frames_omitted = true;
            return V_ACCEPT;
        }
        if (rb_header(s, &l, &type, &value)) { /* the cause (Ruby 3.1+ prints it after) */
        cause:
            if (a->rb_msg_open)
                value_trim(a);
            struct sl_crash_exc *e = exc_push(a);
            exc_set(a, e, type, value, SL_STR_NULL);
            if (e)
                rb_frame(a, &l);
            a->rb_msg_open = true;
            a->extra_lines = 0;
            a->msg_blanks = 0;
            return V_ACCEPT;
        }
        return V_REJECT;
    }
    /* Rails */
    if (a->st == RB_RAILS_MSG) {
        struct sl_str r = rtrim(s);
        if (a->extra_lines++ >= 20 || (!blank(s) && any_start(s)))
            return V_REJECT;
        if (ends(r, "):")) {
            value_append(a, sl_str_make(r.p, r.len - 2));
            a->st = RB_RAILS_PRE;
            a->extra_lines = 0;
        } else {
            value_append(a, s);
        }
        return V_ACCEPT;
    }
    if (blank(s))
        return a->blank_run++ < 3 ? V_ACCEPT : V_REJECT;
    a->blank_run = 0;
    size_t n = rb_loc(s, &l);
    if (n && n == s.len && (l.method.p || a->st == RB_RAILS)) {
        rb_frame(a, &l);
        a->st = RB_RAILS;
        a->confirmed = true;
        return V_ACCEPT;
    }
    if (a->st == RB_RAILS_PRE && is_ws(s.p[0]) && a->extra_lines++ < 20)
        return V_ACCEPT; /* ActionView's source excerpt "    1: <h1>" */
    return V_REJECT;
}

/* ---- Node --------------------------------------------------------------------------- */

/* "TypeError: x", "Error [ERR_X]: y", "Uncaught Error: z", "AxiosError: ..." */
static bool node_header(struct sl_str s, struct sl_str *type, struct sl_str *value)
{
    if (starts(s, "Uncaught "))
        s = skip(s, 9);
    size_t n = 0;
    while (n < s.len && n < 128 &&
           (sl_ascii_alnum((unsigned char)s.p[n]) || s.p[n] == '_' || s.p[n] == '$'))
        n++;
    if (n == 0 || !(s.p[0] >= 'A' && s.p[0] <= 'Z'))
        return false;
    struct sl_str w = sl_str_make(s.p, n);
    if (!word_is_error(w))
        return false;
    size_t i = n;
    if (i + 2 < s.len && s.p[i] == ' ' && s.p[i + 1] == '[') { /* " [ERR_CODE]" */
        const char *cl = memchr(s.p + i, ']', s.len - i);
        if (!cl)
            return false;
        i = (size_t)(cl - s.p) + 1;
    }
    *type = w;
    if (i == s.len) {
        *value = SL_STR_LIT("");
        return true;
    }
    if (s.p[i] != ':')
        return false;
    *value = i + 2 <= s.len ? skip(s, i + 2) : sl_str_make(s.p + s.len, 0);
    return true;
}

/* The @sentry/node line parser (node-stack-trace.ts):
 *   at (?:async )?(?:(.+?)\s+\()?(?:(.+):(\d+):(\d+)?|([^)]+))\)? */
static bool node_at(struct sl_crash_asm *a, struct sl_str s, bool add)
{
    struct sl_str t = ltrim(s);
    if (t.len == s.len || !starts(t, "at "))
        return false;
    t = skip(t, 3);
    if (starts(t, "async "))
        t = skip(t, 6);
    if (ends(t, " {")) {
        t.len -= 2;
        a->depth++;
    }
    if (!add)
        return true;
    struct sl_str fn = SL_STR_NULL, loc = t;
    for (size_t i = 1; i + 1 < t.len; i++) {
        if (is_ws(t.p[i]) && t.p[i + 1] == '(') {
            fn = sl_str_make(t.p, i);
            loc = skip(t, i + 2);
            break;
        }
    }
    /* (.+):(\d+):(\d+)? greedy: the last ":digits:" */
    struct sl_str file = SL_STR_NULL;
    int lineno = 0, colno = 0;
    bool native = false;
    for (size_t i = loc.len; i-- > 1;) {
        if (loc.p[i] != ':')
            continue;
        size_t k = i + 1;
        while (k < loc.len && sl_ascii_digit((unsigned char)loc.p[k]))
            k++;
        if (k == i + 1 || k >= loc.len || loc.p[k] != ':')
            continue;
        file = sl_str_make(loc.p, i);
        lineno = to_int(sl_str_make(loc.p + i + 1, k - i - 1));
        colno = to_int(sl_str_make(loc.p + k + 1, loc.len - k - 1));
        break;
    }
    if (!file.p) {
        const char *cl = memchr(loc.p, ')', loc.len);
        struct sl_str other = cl ? sl_str_make(loc.p, (size_t)(cl - loc.p)) : loc;
        if (sl_str_eq(other, "native"))
            native = true;
        else
            file = other;
    }
    if (starts(file, "file://"))
        file = skip(file, 7);

    /* the function name, as the SDK rewrites it */
    char *function = NULL;
    if (fn.p) {
        struct sl_str name = fn;
        struct sl_str object = SL_STR_NULL, method = SL_STR_NULL;
        size_t ms = 0;
        bool have = false;
        for (size_t i = 0; i < name.len; i++)
            if (name.p[i] == '.') {
                ms = i;
                have = true;
            }
        if (have && ms > 0 && name.p[ms - 1] == '.')
            ms--;
        if (have && ms > 0) {
            object = sl_str_make(name.p, ms);
            method = sl_str_make(name.p + ms + 1, name.len - ms - 1);
            const char *oe = find(object, ".Module");
            if (oe && oe > object.p) {
                name = sl_str_make(oe + 1, name.len - (size_t)(oe + 1 - name.p));
                object = sl_str_make(object.p, (size_t)(oe - object.p));
            }
        }
        if (method.p && sl_str_eq(method, "<anonymous>")) {
            size_t n = object.len + 3;
            function = malloc(n);
            if (!function)
                a->oom = true;
            else
                snprintf(function, n, "%.*s.?", (int)object.len, object.p);
        } else {
            function = dup(a, name, STR_CAP);
        }
    } else {
        function = dupz(a, "?");
    }
    struct sl_crash_frame *f = frame_push(a);
    if (!f) {
        free(function);
        return true;
    }
    f->function = function;
    if (file.len)
        f->filename = dup(a, file, STR_CAP);
    f->lineno = lineno;
    f->colno = colno;
    bool internal =
        native || (file.len && file.p[0] != '/' && file.p[0] != '.' &&
                   !(file.len > 1 && file.p[0] >= 'A' && file.p[0] <= 'Z' && file.p[1] == ':') &&
                   !find(file, "://"));
    f->in_app = !internal && file.len && !find(file, "node_modules/");
    /* module: "pkg.sub:file" under node_modules, else the file's base name */
    if (file.len) {
        struct sl_str base = file;
        const char *sl = NULL;
        for (size_t i = 0; i < file.len; i++)
            if (file.p[i] == '/')
                sl = file.p + i;
        if (sl)
            base = sl_str_make(sl + 1, file.len - (size_t)(sl + 1 - file.p));
        if (ends(base, ".js") || ends(base, ".mjs") || ends(base, ".cjs"))
            base.len -= ends(base, ".js") ? 3 : 4;
        const char *nm = find(file, "/node_modules/");
        if (nm && sl && sl > nm + 13) {
            struct sl_str dir = sl_str_make(nm + 14, (size_t)(sl - (nm + 14)));
            size_t n = dir.len + base.len + 2;
            char *m = malloc(n);
            if (!m) {
                a->oom = true;
            } else {
                snprintf(m, n, "%.*s:%.*s", (int)dir.len, dir.p, (int)base.len, base.p);
                for (char *q = m; *q && *q != ':'; q++)
                    if (*q == '/')
                        *q = '.';
                f->module = m;
            }
        } else if (starts(file, "/app/") && sl && sl > file.p + 4) {
            /* createGetModuleFromFilename with the app's directory (Heroku's /app) */
            struct sl_str dir = sl_str_make(file.p + 5, (size_t)(sl - (file.p + 5)));
            size_t n = dir.len + base.len + 2;
            char *m = malloc(n);
            if (!m) {
                a->oom = true;
            } else {
                if (dir.len)
                    snprintf(m, n, "%.*s:%.*s", (int)dir.len, dir.p, (int)base.len, base.p);
                else
                    snprintf(m, n, "%.*s", (int)base.len, base.p);
                for (char *q = m; *q && *q != ':'; q++)
                    if (*q == '/')
                        *q = '.';
                f->module = m;
            }
        } else if (file.p[0] == '/') {
            f->module = dup(a, base, STR_CAP);
        }
    }
    return true;
}

static bool node_ctx_line(struct sl_str s)
{
    if (!(starts(s, "/") || starts(s, "file://") || starts(s, "node:")))
        return false;
    if (memchr(s.p, ' ', s.len))
        return false;
    const char *colon = NULL;
    for (size_t i = 0; i < s.len; i++)
        if (s.p[i] == ':')
            colon = s.p + i;
    return colon && all_digits(sl_str_make(colon + 1, s.len - (size_t)(colon + 1 - s.p)));
}

static enum verdict node_step(struct sl_crash_asm *a, struct sl_str s)
{
    struct sl_str type, value;

    switch (a->st) {
    case NODE_CTX:
        if (node_header(s, &type, &value)) {
            exc_set(a, exc_push(a), type, value, SL_STR_NULL);
            a->st = NODE_HEAD;
            return V_ACCEPT;
        }
        if (starts(s, "[UnhandledPromiseRejection: ")) {
            struct sl_str v = skip(s, 28);
            if (ends(v, "] {"))
                v.len -= 3, a->depth++;
            else if (ends(v, "]"))
                v.len -= 1;
            exc_set(a, exc_push(a), SL_STR_LIT("UnhandledPromiseRejection"), v, SL_STR_NULL);
            a->confirmed = true;
            a->st = NODE_TAIL;
            return V_ACCEPT;
        }
        if (a->ctx_lines++ < 4 && !any_start(s))
            return V_ACCEPT;
        return V_REJECT;
    case NODE_HEAD:
        if (node_at(a, s, true)) {
            a->st = NODE_AT;
            a->confirmed = true;
            return V_ACCEPT;
        }
        /* a message over several lines */
        if (a->extra_lines++ < 5 && !blank(s) && !plainly_else(a, s)) {
            value_append(a, s);
            return V_ACCEPT;
        }
        return V_REJECT;
    case NODE_AT:
    case NODE_TAIL:
        if (node_at(a, s, a->st == NODE_AT))
            return V_ACCEPT;
        if (starts(s, "Node.js v"))
            return V_END;
        {
            struct sl_str t = ltrim(s);
            if (starts(t, "... ") && ends(t, " lines matching cause stack trace ...")) {
                if (a->st == NODE_AT && a->c->nexcs && cur_exc(a)) {
                    a->more[a->c->nexcs - 1] = to_int(skip(t, 4));
                    a->more_at[a->c->nexcs - 1] = cur_exc(a)->nframes;
                }
                return V_ACCEPT;
            }
        }
        if (blank(s)) {
            a->st = NODE_TAIL;
            return a->blank_run++ < 3 ? V_ACCEPT : V_REJECT;
        }
        a->blank_run = 0;
        {
            struct sl_str t = ltrim(s);
            if (starts(t, "[cause]: ")) {
                t = skip(t, 9);
                bool brace = ends(t, " {");
                if (brace)
                    t.len -= 2;
                if (node_header(t, &type, &value)) {
                    exc_set(a, exc_push(a), type, value, SL_STR_NULL);
                    a->st = NODE_AT;
                    return V_ACCEPT;
                }
                return V_ACCEPT;
            }
            if (t.p[0] == '}') {
                if (a->depth > 0)
                    a->depth--;
                a->st = NODE_TAIL;
                return V_ACCEPT;
            }
            if (a->depth > 0) {
                if (ends(t, "{") || ends(t, "["))
                    a->depth++;
                else if (t.p[0] == ']' && a->depth > 0)
                    a->depth--;
                a->st = NODE_TAIL;
                return V_ACCEPT;
            }
            if (starts(t, "(Use `node --trace-"))
                return V_ACCEPT;
        }
        return V_REJECT;
    default:
        return V_REJECT;
    }
}

/* ---- JVM ---------------------------------------------------------------------------- */

/* "java.lang.IllegalStateException: msg", "com.x.Y$Z", "kotlin.NotImplementedError: ..." */
static bool java_type(struct sl_str s, struct sl_str *type, struct sl_str *value, bool strict)
{
    size_t i = 0, dots = 0;
    while (i < s.len && i < 256 &&
           (sl_ascii_alnum((unsigned char)s.p[i]) || s.p[i] == '_' || s.p[i] == '$' ||
            s.p[i] == '.')) {
        if (s.p[i] == '.')
            dots++;
        i++;
    }
    if (i == 0 || (i < s.len && !(s.p[i] == ':' && (i + 1 == s.len || s.p[i + 1] == ' '))))
        return false;
    *type = sl_str_make(s.p, i);
    if (strict) {
        const char *last = s.p;
        for (size_t k = 0; k < i; k++)
            if (s.p[k] == '.')
                last = s.p + k + 1;
        struct sl_str w = sl_str_make(last, i - (size_t)(last - s.p));
        if (dots == 0 || !(w.len && w.p[0] >= 'A' && w.p[0] <= 'Z') || !word_is_error(w))
            return false;
    }
    *value = i + 2 <= s.len ? skip(s, i + 2) : sl_str_make(s.p + s.len, 0);
    return true;
}

static void java_exception(struct sl_crash_asm *a, struct sl_str type, struct sl_str value)
{
    struct sl_crash_exc *e = exc_push(a);
    if (!e)
        return;
    const char *dot = NULL;
    for (size_t k = 0; k < type.len; k++)
        if (type.p[k] == '.')
            dot = type.p + k;
    struct sl_str mod = dot ? sl_str_make(type.p, (size_t)(dot - type.p)) : SL_STR_NULL;
    struct sl_str name = dot ? sl_str_make(dot + 1, type.len - (size_t)(dot + 1 - type.p)) : type;
    exc_set(a, e, name, value, mod);
}

static bool java_in_app(struct sl_str cls)
{
    static const char *const ext[] = {"java.",    "javax.", "sun.",
                                      "com.sun.", "jdk.",   "kotlin.",
                                      "kotlinx.", "scala.", "org.jetbrains.kotlin."};
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
        if (starts(cls, ext[i]))
            return false;
    return true;
}

/* "\tat pkg.Class.method(File.java:12)", "(Native Method)", "(Unknown Source)",
 * "java.base/java.lang.Thread.run(...)", "app//com.x.Y.z(...)"; logback's " ~[x.jar:na]". */
static bool java_at(struct sl_crash_asm *a, struct sl_str s, bool add)
{
    struct sl_str t = ltrim(s);
    if (t.len == s.len || !starts(t, "at "))
        return false;
    t = skip(t, 3);
    const char *open = memchr(t.p, '(', t.len);
    if (!open)
        return false;
    const char *close = memchr(open, ')', t.len - (size_t)(open - t.p));
    if (!close)
        return false;
    if (!add)
        return true;
    struct sl_str q = sl_str_make(t.p, (size_t)(open - t.p));
    for (size_t i = q.len; i-- > 0;)
        if (q.p[i] == '/') {
            q = skip(q, i + 1);
            break;
        }
    const char *dot = NULL;
    for (size_t k = 0; k < q.len; k++)
        if (q.p[k] == '.')
            dot = q.p + k;
    struct sl_str cls = dot ? sl_str_make(q.p, (size_t)(dot - q.p)) : SL_STR_NULL;
    struct sl_str meth = dot ? sl_str_make(dot + 1, q.len - (size_t)(dot + 1 - q.p)) : q;
    struct sl_str in = sl_str_make(open + 1, (size_t)(close - open - 1));
    struct sl_crash_frame *f = frame_push(a);
    if (!f)
        return true;
    if (cls.p)
        f->module = dup(a, cls, STR_CAP);
    f->function = dup(a, meth, STR_CAP);
    const char *colon = memchr(in.p, ':', in.len);
    if (colon) {
        f->filename = dup(a, sl_str_make(in.p, (size_t)(colon - in.p)), STR_CAP);
        f->lineno = to_int(sl_str_make(colon + 1, in.len - (size_t)(colon + 1 - in.p)));
    } else if (!sl_str_eq(in, "Native Method") && !sl_str_eq(in, "Unknown Source") && in.len) {
        f->filename = dup(a, in, STR_CAP);
    }
    f->in_app = java_in_app(cls);
    return true;
}

static enum verdict java_step(struct sl_crash_asm *a, struct sl_str s)
{
    struct sl_str type, value;
    struct sl_str t = ltrim(s);
    bool indented = t.len < s.len;

    if (java_at(a, s, false)) {
        bool nested = a->skip_frames || (s.len > 1 && s.p[0] == '\t' && s.p[1] == '\t');
        if (a->need_at && !nested)
            pend_flush(a);
        a->need_at = false;
        if (!nested)
            java_at(a, s, true);
        a->st = JAVA_AT;
        a->confirmed = true;
        return V_ACCEPT;
    }
    if (starts(t, "Caused by: ") && !(indented && a->skip_frames) &&
        java_type(skip(t, 11), &type, &value, false)) {
        /* (a NoClassDefFoundError prints its cause before any frame) */
        if (a->need_at)
            pend_flush(a);
        a->skip_frames = false;
        java_exception(a, type, value);
        a->need_at = true;
        a->st = JAVA_AT;
        sl_buf_reset(&a->pend);
        a->extra_lines = 0;
        return V_ACCEPT;
    }
    /* a message over several lines (SQL errors, ...) before the first "at" */
    if (a->need_at && pend_add(a, s))
        return V_ACCEPT;
    if (a->st == JAVA_HEAD)
        return V_REJECT;
    if (indented && starts(t, "... ") && (ends(t, " more") || ends(t, " common frames omitted"))) {
        if (!a->skip_frames && a->c->nexcs)
            a->more[a->c->nexcs - 1] = to_int(skip(t, 4));
        return V_ACCEPT;
    }
    if (indented && starts(t, "Suppressed: ")) {
        a->skip_frames = true;
        return V_ACCEPT;
    }
    if (starts(t, "Caused by: ") && indented && a->skip_frames)
        return V_ACCEPT; /* a cause inside a suppressed exception */
    return V_REJECT;
}

/* ---- Heroku platform crashes -------------------------------------------------------- */

/* "Error R14 (Memory quota exceeded)"; the router's "at=error code=H10 desc="App crashed"". */
static bool plat_start(struct sl_str s, struct sl_str *code, struct sl_str *desc)
{
    if (starts(s, "Error R") && s.len >= 10 && sl_ascii_digit((unsigned char)s.p[7]) &&
        sl_ascii_digit((unsigned char)s.p[8]) && s.p[9] == ' ') {
        *code = sl_str_make(s.p + 6, 3);
        if (!(sl_str_eq(*code, "R10") || sl_str_eq(*code, "R14") || sl_str_eq(*code, "R15")))
            return false;
        *desc = SL_STR_NULL;
        return true;
    }
    if (starts(s, "at=error code=H10 ")) {
        *code = SL_STR_LIT("H10");
        *desc = SL_STR_LIT("App crashed");
        return true;
    }
    return false;
}

static enum verdict plat_step(struct sl_crash_asm *a, struct sl_str s)
{
    struct sl_str code, desc;
    if (plat_start(s, &code, &desc))
        return a->c->platform_code && sl_str_eq(code, a->c->platform_code) ? V_ACCEPT : V_REJECT;
    if (a->c->platform_code && a->c->platform_code[0] == 'R' &&
        (starts(s, "Process exited with status ") || starts(s, "State changed from ") ||
         starts(s, "Stopping process with SIG") || starts(s, "Stopping all processes with SIG") ||
         starts(s, "Process running mem=")))
        return V_ACCEPT;
    return V_REJECT;
}

/* ---- the assembler ------------------------------------------------------------------ */

void sl_crash_limits_default(struct sl_crash_limits *l)
{
    l->gap_us = 500000;
    l->max_lines = 2000;
    l->max_bytes = 256 * 1024;
}

struct sl_crash_asm *sl_crash_asm_new(const struct sl_crash_limits *l)
{
    struct sl_crash_asm *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    if (l)
        a->lim = *l;
    else
        sl_crash_limits_default(&a->lim);
    if (a->lim.max_lines == 0)
        a->lim.max_lines = 1;
    if (a->lim.max_bytes == 0)
        a->lim.max_bytes = 1;
    sl_buf_init(&a->pend, VALUE_CAP);
    return a;
}

static void trace_reset(struct sl_crash_asm *a)
{
    sl_crash_free(a->c);
    a->c = NULL;
    a->open = a->confirmed = a->overflow = a->skip_frames = a->go_have_fn = false;
    a->st = ST_IDLE;
    a->xcap = a->idcap = a->bytes = a->lines = a->frames = 0;
    a->blank_run = a->ctx_lines = a->extra_lines = a->depth = 0;
    a->rb_msg_open = a->need_at = a->py_group = a->rb_repeat = false;
    set(&a->rb_first, NULL);
    a->msg_blanks = 0;
    sl_buf_free(&a->pend);
    sl_buf_init(&a->pend, VALUE_CAP);
    set(&a->go_fn, NULL);
    set(&a->go_mod, NULL);
    set(&a->py_root, NULL);
    set(&a->py_main, NULL);
    set(&a->syn_file, NULL);
    a->rb_pid[0] = '\0';
}

void sl_crash_asm_free(struct sl_crash_asm *a)
{
    if (!a)
        return;
    trace_reset(a);
    sl_buf_free(&a->pend);
    for (size_t i = 0; i < a->ndone; i++)
        sl_crash_free(a->done[(a->donehead + i) % a->donecap]);
    free(a->done);
    free(a);
}

static bool any_start(struct sl_str s)
{
    struct sl_str t, v, code, desc;
    size_t wl;
    return starts(s, PY_TRACEBACK) || starts(s, PY_GROUP) || starts(s, "panic: ") ||
           starts(s, "fatal error: ") || starts(s, "Exception in thread \"") ||
           is_rails_error(s, &wl) || is_rails_error_open(s, &wl) || is_ruby_header(s) ||
           plat_start(s, &code, &desc) || py_celery(s, &t, &v) || node_header(s, &t, &v) ||
           java_type(s, &t, &v, true);
}

static void frames_reverse(struct sl_crash_exc *e)
{
    for (size_t i = 0, j = e->nframes; i + 1 < j; i++, j--) {
        struct sl_crash_frame f = e->frames[i];
        e->frames[i] = e->frames[j - 1];
        e->frames[j - 1] = f;
    }
}

/* JVM "... N more": the last N frames are the enclosing exception's last N (printed). */
static void java_fill_more(struct sl_crash_asm *a)
{
    struct sl_crash *c = a->c;
    for (size_t i = 1; i < c->nexcs; i++) {
        int n = a->more[i];
        struct sl_crash_exc *e = &c->excs[i], *p = &c->excs[i - 1];
        if (n <= 0)
            continue;
        if ((size_t)n > p->nframes || a->frames + (size_t)n > a->lim.max_lines) {
            e->frames_omitted = true;
            continue;
        }
        struct sl_crash_frame *nf = realloc(e->frames, (e->nframes + (size_t)n) * sizeof(*nf));
        if (!nf) {
            a->oom = true;
            return;
        }
        e->frames = nf;
        a->fcap[i] = e->nframes + (size_t)n;
        for (size_t k = p->nframes - (size_t)n; k < p->nframes; k++) {
            struct sl_crash_frame *d = &e->frames[e->nframes++], *src = &p->frames[k];
            *d = *src;
            d->filename = src->filename ? dupz(a, src->filename) : NULL;
            d->abs_path = src->abs_path ? dupz(a, src->abs_path) : NULL;
            d->function = src->function ? dupz(a, src->function) : NULL;
            d->module = src->module ? dupz(a, src->module) : NULL;
            a->frames++;
        }
    }
}

static bool frame_same(const struct sl_crash_frame *x, const struct sl_crash_frame *y)
{
    return x->lineno == y->lineno && x->colno == y->colno &&
           !strcmp(x->function ? x->function : "", y->function ? y->function : "") &&
           !strcmp(x->filename ? x->filename : "", y->filename ? y->filename : "");
}

/* Node "... N lines matching cause stack trace ...": the N frames of the cause's stack
 * (printed after) that follow its copy of the frame just before the marker. */
static void node_fill_matching(struct sl_crash_asm *a)
{
    struct sl_crash *c = a->c;
    for (size_t i = 0; i + 1 < c->nexcs; i++) {
        struct sl_crash_exc *e = &c->excs[i], *cause = &c->excs[i + 1];
        size_t n = a->more[i] > 0 ? (size_t)a->more[i] : 0, at = a->more_at[i];
        if (n == 0 || at == 0 || at > e->nframes)
            continue;
        size_t k = 0;
        while (k < cause->nframes && !frame_same(&cause->frames[k], &e->frames[at - 1]))
            k++;
        if (k + 1 + n > cause->nframes || a->frames + n > a->lim.max_lines) {
            e->frames_omitted = true;
            continue;
        }
        struct sl_crash_frame *nf = realloc(e->frames, (e->nframes + n) * sizeof(*nf));
        if (!nf) {
            a->oom = true;
            return;
        }
        e->frames = nf;
        a->fcap[i] = e->nframes + n;
        memmove(&e->frames[at + n], &e->frames[at], (e->nframes - at) * sizeof(*nf));
        for (size_t j = 0; j < n; j++) {
            struct sl_crash_frame *d = &e->frames[at + j], *src = &cause->frames[k + 1 + j];
            *d = *src;
            d->filename = src->filename ? dupz(a, src->filename) : NULL;
            d->abs_path = src->abs_path ? dupz(a, src->abs_path) : NULL;
            d->function = src->function ? dupz(a, src->function) : NULL;
            d->module = src->module ? dupz(a, src->module) : NULL;
        }
        e->nframes += n;
        a->frames += n;
    }
}

static void fingerprint(struct sl_crash *c)
{
    struct sl_buf b;
    sl_buf_init(&b, 8192);
    int rc = sl_buf_addf(&b, "sluice-crash-1|%d", (int)c->lang);
    if (c->platform_code) {
        rc = rc ? rc : sl_buf_addf(&b, "|heroku|%s", c->platform_code);
    } else if (c->nexcs) {
        const struct sl_crash_exc *e = &c->excs[c->nexcs - 1];
        rc =
            rc ? rc : sl_buf_addf(&b, "|%s.%s", e->module ? e->module : "", e->type ? e->type : "");
        size_t used = 0;
        for (int pass = 0; pass < 2 && used == 0; pass++) {
            for (size_t i = e->nframes; i-- > 0 && used < 3;) {
                const struct sl_crash_frame *f = &e->frames[i];
                if (pass == 0 && !f->in_app)
                    continue;
                rc = rc ? rc
                        : sl_buf_addf(&b, "|%s@%s", f->function ? f->function : "",
                                      f->module     ? f->module
                                      : f->filename ? f->filename
                                      : f->abs_path ? f->abs_path
                                                    : "");
                used++;
            }
        }
        if (used == 0)
            rc = rc ? rc : sl_buf_addf(&b, "|%s", e->value ? e->value : "");
    }
    if (rc)
        sl_digest_sha256_hex("sluice-crash-1", 14, c->fingerprint);
    else
        sl_digest_sha256_hex(b.p, b.len, c->fingerprint);
    sl_buf_free(&b);
}

static int done_push(struct sl_crash_asm *a, struct sl_crash *c)
{
    if (a->ndone == a->donecap) {
        size_t n = a->donecap ? a->donecap * 2 : 4;
        struct sl_crash **d = malloc(n * sizeof(*d));
        if (!d)
            return SL_ENOMEM;
        for (size_t i = 0; i < a->ndone; i++)
            d[i] = a->done[(a->donehead + i) % a->donecap];
        free(a->done);
        a->done = d;
        a->donecap = n;
        a->donehead = 0;
    }
    a->done[(a->donehead + a->ndone) % a->donecap] = c;
    a->ndone++;
    return 0;
}

/* Close the open trace: a crash when it was confirmed, nothing when it was only a
 * look-alike. Returns 1 when a crash was completed, 0, or SL_ENOMEM. */
static int trace_close(struct sl_crash_asm *a)
{
    int rc = 0;
    if (!a->open)
        return 0;
    struct sl_crash *c = a->c;
    if (a->confirmed && !a->oom && c) {
        if (c->lang == SL_LANG_JAVA)
            java_fill_more(a);
        if (c->lang == SL_LANG_NODE)
            node_fill_matching(a);
        if (c->lang == SL_LANG_RUBY && a->rb_msg_open)
            value_trim(a);
        if (c->lang == SL_LANG_GO || c->lang == SL_LANG_RUBY || c->lang == SL_LANG_NODE ||
            c->lang == SL_LANG_JAVA) {
            for (size_t i = 0; i < c->nexcs; i++)
                frames_reverse(&c->excs[i]);
        }
        if (c->lang == SL_LANG_RUBY || c->lang == SL_LANG_NODE || c->lang == SL_LANG_JAVA) {
            for (size_t i = 0, j = c->nexcs; i + 1 < j; i++, j--) {
                struct sl_crash_exc e = c->excs[i];
                c->excs[i] = c->excs[j - 1];
                c->excs[j - 1] = e;
            }
        }
        /* drop exceptions that never got a type (a chain cut short) unless it is all */
        for (size_t i = 0; i < c->nexcs; i++) {
            struct sl_crash_exc *e = &c->excs[i];
            if (!e->type) {
                e->type = dupz(a, c->lang == SL_LANG_PYTHON ? "UnknownException" : "Error");
                e->value = dupz(a, "(the trace was cut before its exception line)");
                c->truncated = true;
            }
            if (!e->value)
                e->value = dupz(a, "");
        }
        if (c->lang == SL_LANG_PLATFORM || c->nexcs > 0) {
            if (!a->oom) {
                fingerprint(c);
                rc = done_push(a, c);
                if (rc == 0) {
                    a->c = NULL;
                    rc = 1;
                }
            }
        }
    }
    if (a->oom && rc == 0)
        rc = SL_ENOMEM;
    a->oom = false;
    trace_reset(a);
    return rc;
}

static int trace_open(struct sl_crash_asm *a, enum sl_crash_lang lang, enum state st)
{
    trace_reset(a);
    a->c = calloc(1, sizeof(*a->c));
    if (!a->c)
        return SL_ENOMEM;
    a->c->lang = lang;
    a->open = true;
    a->st = st;
    return 0;
}

/* Record the line as part of the open trace, and the caps. */
static void trace_add(struct sl_crash_asm *a, const struct sl_crash_line *ln)
{
    struct sl_crash *c = a->c;
    if (c->nlines == 0 && !a->overflow) {
        c->first_id = ln->id;
        c->first_ts_us = ln->ts_us;
    }
    c->last_id = ln->id;
    c->last_ts_us = ln->ts_us;
    a->last_ts = ln->ts_us;
    if (a->overflow)
        return;
    if (c->nlines + 1 > a->lim.max_lines || a->bytes + ln->msg.len > a->lim.max_bytes) {
        a->overflow = true;
        c->truncated = true;
        return;
    }
    if (c->nlines == a->idcap) {
        size_t n = a->idcap ? a->idcap * 2 : 16;
        if (n > a->lim.max_lines)
            n = a->lim.max_lines;
        int64_t *ids = realloc(c->line_ids, n * sizeof(*ids));
        if (!ids) {
            a->oom = true;
            return;
        }
        c->line_ids = ids;
        a->idcap = n;
    }
    c->line_ids[c->nlines++] = ln->id;
    a->bytes += ln->msg.len;
}

/* Whether s starts a trace; opens it (and parses s) when it does. */
static int try_start(struct sl_crash_asm *a, struct sl_str s, bool *started)
{
    struct sl_str type, value, code, desc;
    struct rb_loc l;
    struct sl_str path, func;
    int lineno, rc;
    size_t wl;

    *started = false;
    if (s.len == 0)
        return 0;
    if (starts(s, PY_TRACEBACK) || starts(s, PY_GROUP)) {
        if ((rc = trace_open(a, SL_LANG_PYTHON, PY_TB)))
            return rc;
        exc_push(a);
        a->py_group = s.p[0] == ' ';
    } else if (py_celery(s, &type, &value)) {
        if ((rc = trace_open(a, SL_LANG_PYTHON, PY_CELERY)))
            return rc;
        exc_set(a, exc_push(a), type, value, SL_STR_LIT("builtins"));
        a->confirmed = true;
    } else if (py_file_line(s, &path, &lineno, &func) && !func.p) {
        if ((rc = trace_open(a, SL_LANG_PYTHON, PY_SYNTAX)))
            return rc;
        exc_push(a);
        a->syn_file = dup(a, path, STR_CAP);
        a->syn_line = lineno;
    } else if (starts(s, "panic: ") || starts(s, "fatal error: ")) {
        if ((rc = trace_open(a, SL_LANG_GO, GO_HEAD)))
            return rc;
        bool fatal = s.p[0] == 'f';
        go_panic_line(a, skip(s, fatal ? 13 : 7), fatal);
    } else if (starts(s, "Exception in thread \"")) {
        const char *q = find(skip(s, 21), "\" ");
        if (!q ||
            !java_type(sl_str_make(q + 2, s.len - (size_t)(q + 2 - s.p)), &type, &value, false))
            return 0;
        if ((rc = trace_open(a, SL_LANG_JAVA, JAVA_HEAD)))
            return rc;
        java_exception(a, type, value);
        a->confirmed = true;
        a->need_at = true;
    } else if (java_type(s, &type, &value, true) && memchr(type.p, '.', type.len)) {
        if ((rc = trace_open(a, SL_LANG_JAVA, JAVA_HEAD)))
            return rc;
        java_exception(a, type, value);
        a->need_at = true;
    } else if (starts(s, "#<Thread:") && find(s, "> terminated with exception")) {
        if ((rc = trace_open(a, SL_LANG_RUBY, RB_THREAD)))
            return rc;
    } else if (rb_header(s, &l, &type, &value)) {
        if ((rc = trace_open(a, SL_LANG_RUBY, RB_UNCAUGHT)))
            return rc;
        a->rb_first = dup(a, rtrim(s), STR_CAP);
        exc_set(a, exc_push(a), type, value, SL_STR_NULL);
        rb_frame(a, &l);
        a->confirmed = true;
        a->rb_msg_open = true;
    } else if (is_rails_error(s, &wl)) {
        if ((rc = trace_open(a, SL_LANG_RUBY, RB_RAILS_PRE)))
            return rc;
        struct sl_str r = rtrim(s);
        exc_set(a, exc_push(a), sl_str_make(s.p, wl), sl_str_make(s.p + wl + 2, r.len - wl - 4),
                SL_STR_NULL);
    } else if (is_rails_error_open(s, &wl)) {
        if ((rc = trace_open(a, SL_LANG_RUBY, RB_RAILS_MSG)))
            return rc;
        struct sl_str r = rtrim(s);
        exc_set(a, exc_push(a), sl_str_make(s.p, wl), sl_str_make(s.p + wl + 2, r.len - wl - 2),
                SL_STR_NULL);
    } else if (a->line_prefixed && is_ruby_plain(s, &wl)) {
        if ((rc = trace_open(a, SL_LANG_RUBY, RB_RAILS_PRE)))
            return rc;
        exc_set(a, exc_push(a), sl_str_make(s.p, wl),
                wl + 2 <= s.len ? skip(s, wl + 2) : SL_STR_LIT(""), SL_STR_NULL);
    } else if (node_header(s, &type, &value)) {
        if ((rc = trace_open(a, SL_LANG_NODE, NODE_HEAD)))
            return rc;
        exc_set(a, exc_push(a), type, value, SL_STR_NULL);
    } else if (node_ctx_line(s) || starts(s, "[UnhandledPromiseRejection: ")) {
        if ((rc = trace_open(a, SL_LANG_NODE, NODE_CTX)))
            return rc;
        if (s.p[0] == '[') {
            node_step(a, s); /* parses the rejection into the trace (always accepted) */
        }
    } else if (plat_start(s, &code, &desc)) {
        if ((rc = trace_open(a, SL_LANG_PLATFORM, PLAT_OPEN)))
            return rc;
        a->c->platform_code = dup(a, code, 8);
        if (desc.p) {
            char m[64];
            snprintf(m, sizeof(m), "Error %.*s (%.*s)", (int)code.len, code.p, (int)desc.len,
                     desc.p);
            a->c->message = dupz(a, m);
        } else {
            a->c->message = dup(a, s, VALUE_CAP);
        }
        a->confirmed = true;
    } else {
        return 0;
    }
    *started = true;
    return 0;
}

static enum verdict step(struct sl_crash_asm *a, struct sl_str s)
{
    switch (a->c->lang) {
    case SL_LANG_PYTHON:
        return py_step(a, s);
    case SL_LANG_GO:
        return go_step(a, s);
    case SL_LANG_RUBY:
        return rb_step(a, s);
    case SL_LANG_NODE:
        return node_step(a, s);
    case SL_LANG_JAVA:
        return java_step(a, s);
    case SL_LANG_PLATFORM:
        return plat_step(a, s);
    default:
        return V_REJECT;
    }
}

static int add_done(int rc, int *n)
{
    if (rc < 0)
        return rc;
    *n += rc;
    return 0;
}

int sl_crash_asm_feed(struct sl_crash_asm *a, const struct sl_crash_line *line, size_t *ncompleted)
{
    int n = 0, rc = 0;
    struct sl_str pid;
    struct sl_str msg = line->msg.p ? line->msg : SL_STR_LIT("");
    msg = rtrim(msg);
    struct sl_str s = strip_prefix(msg, &pid);

    if (a->open && line->ts_us - a->last_ts > a->lim.gap_us)
        if ((rc = add_done(trace_close(a), &n)))
            goto out;
    if (a->open) {
        enum verdict v;
        /* another process's logger lines (puma workers) leave the trace open */
        a->line_prefixed = s.p != msg.p;
        if (a->rb_pid[0] && pid.len &&
            (pid.len != strlen(a->rb_pid) || memcmp(pid.p, a->rb_pid, pid.len)))
            v = V_IGNORE;
        else
            v = step(a, s);
        if (v == V_ACCEPT || v == V_END) {
            trace_add(a, line);
            if (v == V_END || a->oom)
                if ((rc = add_done(trace_close(a), &n)))
                    goto out;
            goto out;
        }
        if (v == V_IGNORE)
            goto out;
        if ((rc = add_done(trace_close(a), &n)))
            goto out;
    }
    bool started;
    a->line_prefixed = s.p != msg.p;
    if ((rc = try_start(a, s, &started)))
        goto out;
    if (started) {
        if (pid.len && pid.len < sizeof(a->rb_pid)) {
            memcpy(a->rb_pid, pid.p, pid.len);
            a->rb_pid[pid.len] = '\0';
        }
        trace_add(a, line);
        if (a->oom)
            rc = add_done(trace_close(a), &n);
    }
out:
    if (ncompleted)
        *ncompleted = (size_t)n;
    return rc < 0 ? rc : n;
}

int sl_crash_asm_flush(struct sl_crash_asm *a, int64_t now_ts_us, size_t *ncompleted)
{
    int n = 0, rc = 0;
    if (a->open && now_ts_us - a->last_ts > a->lim.gap_us)
        rc = add_done(trace_close(a), &n);
    if (ncompleted)
        *ncompleted = (size_t)n;
    return rc < 0 ? rc : n;
}

int sl_crash_asm_finish(struct sl_crash_asm *a, size_t *ncompleted)
{
    int n = 0, rc = add_done(trace_close(a), &n);
    if (ncompleted)
        *ncompleted = (size_t)n;
    return rc < 0 ? rc : n;
}

bool sl_crash_asm_open(const struct sl_crash_asm *a, int64_t *first_id)
{
    if (!a->open || !a->c)
        return false;
    if (first_id)
        *first_id = a->c->first_id;
    return true;
}

struct sl_crash *sl_crash_asm_take(struct sl_crash_asm *a)
{
    if (a->ndone == 0)
        return NULL;
    struct sl_crash *c = a->done[a->donehead];
    a->donehead = (a->donehead + 1) % a->donecap;
    a->ndone--;
    return c;
}

size_t sl_crash_asm_bytes(const struct sl_crash_asm *a)
{
    size_t n = sizeof(*a) + a->donecap * sizeof(void *) + a->pend.cap;
    if (a->c) {
        const struct sl_crash *c = a->c;
        n += sizeof(*c) + a->idcap * sizeof(int64_t) + a->xcap * sizeof(struct sl_crash_exc);
        for (size_t i = 0; i < c->nexcs; i++) {
            const struct sl_crash_exc *e = &c->excs[i];
            n += a->fcap[i] * sizeof(struct sl_crash_frame);
            n += (e->type ? strlen(e->type) + 1 : 0) + (e->value ? strlen(e->value) + 1 : 0) +
                 (e->module ? strlen(e->module) + 1 : 0);
            for (size_t k = 0; k < e->nframes; k++) {
                const struct sl_crash_frame *f = &e->frames[k];
                n += (f->filename ? strlen(f->filename) + 1 : 0) +
                     (f->abs_path ? strlen(f->abs_path) + 1 : 0) +
                     (f->function ? strlen(f->function) + 1 : 0) +
                     (f->module ? strlen(f->module) + 1 : 0);
            }
        }
    }
    return n;
}

/* ---- Sentry: the event -------------------------------------------------------------- */

static int jstr(struct sl_buf *b, const char *s)
{
    if (!s)
        return ADDLIT(b, "null");
    size_t n = strlen(s);
    if (sl_utf8_clean(s, n))
        return sl_enc_json_str(b, s, n);
    struct sl_buf t;
    sl_buf_init(&t, 4 * n + 16);
    int rc = sl_utf8_sanitize(s, n, &t);
    if (rc == 0)
        rc = sl_enc_json_str(b, t.p ? t.p : "", t.len);
    sl_buf_free(&t);
    return rc;
}

/* "key":"value" with a leading comma unless first. */
static int jkv(struct sl_buf *b, bool *first, const char *key, const char *val)
{
    int rc = sl_buf_addf(b, "%s\"%s\":", *first ? "" : ",", key);
    *first = false;
    return rc ? rc : jstr(b, val);
}

static const char *platform_name(enum sl_crash_lang l)
{
    switch (l) {
    case SL_LANG_PYTHON:
        return "python";
    case SL_LANG_GO:
        return "go";
    case SL_LANG_RUBY:
        return "ruby";
    case SL_LANG_NODE:
        return "node";
    case SL_LANG_JAVA:
        return "java";
    default:
        return "other";
    }
}

static int rfc3339(struct sl_buf *b, int64_t us)
{
    time_t t = (time_t)(us / 1000000);
    long frac = (long)(us % 1000000);
    if (frac < 0) {
        frac += 1000000;
        t--;
    }
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return SL_EINVAL;
    return sl_buf_addf(b, "\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\"", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

static int frame_json(struct sl_buf *b, const struct sl_crash_frame *f)
{
    bool first = true;
    int rc = sl_buf_addc(b, '{');
    if (!rc && f->filename)
        rc = jkv(b, &first, "filename", f->filename);
    if (!rc && f->abs_path)
        rc = jkv(b, &first, "abs_path", f->abs_path);
    if (!rc && f->function)
        rc = jkv(b, &first, "function", f->function);
    if (!rc && f->module)
        rc = jkv(b, &first, "module", f->module);
    if (!rc && f->lineno > 0)
        rc = sl_buf_addf(b, "%s\"lineno\":%d", first ? "" : ",", f->lineno), first = false;
    if (!rc && f->colno > 0)
        rc = sl_buf_addf(b, ",\"colno\":%d", f->colno);
    if (!rc)
        rc = sl_buf_addf(b, "%s\"in_app\":%s}", first ? "" : ",", f->in_app ? "true" : "false");
    return rc;
}

/* keep: frames of one exception at most (EVENT_FRAMES, less when the event must shrink to
 * fit its buffer): the oldest fifth and the newest rest, as Sentry trims. */
static int exc_json(struct sl_buf *b, const struct sl_crash_exc *e, size_t keep)
{
    bool first = true;
    int rc = sl_buf_addc(b, '{');
    rc = rc ? rc : jkv(b, &first, "type", e->type ? e->type : "Error");
    rc = rc ? rc : jkv(b, &first, "value", e->value ? e->value : "");
    if (!rc && e->module)
        rc = jkv(b, &first, "module", e->module);
    if (!rc)
        rc = ADDLIT(b, ",\"mechanism\":{\"type\":\"sluice\",\"handled\":false}");
    if (!rc && e->nframes) {
        rc = ADDLIT(b, ",\"stacktrace\":{\"frames\":[");
        /* Sentry keeps at most 250 frames: the oldest 50 and the newest 200 */
        size_t keep_head = e->nframes > keep ? keep / 5 : e->nframes;
        size_t tail_from = e->nframes > keep ? e->nframes - (keep - keep / 5) : e->nframes;
        bool comma = false;
        for (size_t i = 0; !rc && i < e->nframes; i++) {
            if (i >= keep_head && i < tail_from)
                continue;
            if (comma)
                rc = sl_buf_addc(b, ',');
            comma = true;
            rc = rc ? rc : frame_json(b, &e->frames[i]);
        }
        rc = rc ? rc : sl_buf_addc(b, ']');
        if (!rc && tail_from > keep_head)
            rc = sl_buf_addf(b, ",\"frames_omitted\":[%zu,%zu]", keep_head, tail_from);
        rc = rc ? rc : sl_buf_addc(b, '}');
    }
    return rc ? rc : sl_buf_addc(b, '}');
}

/* A JSON object text's inside (without its braces), or an empty slice. */
static struct sl_str obj_inner(const char *json)
{
    if (!json)
        return SL_STR_NULL;
    struct sl_str s = rtrim(ltrim(sl_str_make(json, strlen(json))));
    while (s.len && (s.p[0] == '\n' || s.p[0] == '\r'))
        s = ltrim(skip(s, 1));
    if (s.len < 2 || s.p[0] != '{' || s.p[s.len - 1] != '}')
        return SL_STR_NULL;
    s = rtrim(ltrim(sl_str_make(s.p + 1, s.len - 2)));
    return s;
}

static bool has_key(struct sl_str inner, const char *key)
{
    char k[64];
    snprintf(k, sizeof(k), "\"%s\"", key);
    return find(inner, k) != NULL;
}

static int tag(struct sl_buf *b, bool *first, struct sl_str theirs, const char *k, const char *v)
{
    if (!v || !*v || has_key(theirs, k))
        return 0;
    char cut[201];
    size_t n = utf8_cut(sl_str_make(v, strlen(v)), 200);
    memcpy(cut, v, n);
    cut[n] = '\0';
    return jkv(b, first, k, cut);
}

static int event_json(const struct sl_crash *c, const struct sl_crash_ctx *cx, struct sl_buf *out,
                      size_t keep);

int sl_crash_event_json(const struct sl_crash *c, const struct sl_crash_ctx *cx, struct sl_buf *out)
{
    static const struct sl_crash_ctx none;
    size_t start = out->len;
    int rc = SL_ETOOBIG;
    /* an event that does not fit the buffer (Sentry takes 1 MiB) gives up frames, the
     * middle of each stack first, before it gives up */
    for (size_t keep = EVENT_FRAMES; rc == SL_ETOOBIG; keep = keep > 10 ? keep / 2 : 0) {
        out->len = start;
        rc = event_json(c, cx ? cx : &none, out, keep);
        if (keep == 0)
            break;
    }
    return rc;
}

static int event_json(const struct sl_crash *c, const struct sl_crash_ctx *cx, struct sl_buf *out,
                      size_t keep)
{
    int rc = sl_buf_addc(out, '{');
    bool first = true;
    char eid[33];
    if (cx->event_id) {
        snprintf(eid, sizeof(eid), "%s", cx->event_id);
    } else {
        /* stable per crash: its lines' ids and times, not only the bug's fingerprint */
        char seed[160], h[65];
        int n = snprintf(seed, sizeof(seed), "%s|%lld|%lld|%lld", c->fingerprint,
                         (long long)c->first_id, (long long)c->last_id, (long long)c->first_ts_us);
        sl_digest_sha256_hex(seed, n > 0 ? (size_t)n : 0, h);
        snprintf(eid, sizeof(eid), "%.32s", h);
    }
    rc = rc ? rc : jkv(out, &first, "event_id", eid);
    int64_t ts = cx->timestamp_us ? cx->timestamp_us : c->last_ts_us;
    rc = rc ? rc : ADDLIT(out, ",\"timestamp\":");
    rc = rc ? rc : rfc3339(out, ts);
    rc = rc ? rc : jkv(out, &first, "platform", platform_name(c->lang));
    rc = rc ? rc : jkv(out, &first, "level", "error");
    rc = rc ? rc : jkv(out, &first, "logger", "sluice.crash");
    if (!rc && cx->server_name)
        rc = jkv(out, &first, "server_name", cx->server_name);
    if (!rc && cx->release)
        rc = jkv(out, &first, "release", cx->release);
    if (!rc && cx->environment)
        rc = jkv(out, &first, "environment", cx->environment);

    if (!rc && c->lang == SL_LANG_PLATFORM) {
        rc = jkv(out, &first, "message", c->message ? c->message : "Heroku platform crash");
    } else if (!rc) {
        rc = ADDLIT(out, ",\"exception\":{\"values\":[");
        for (size_t i = 0; !rc && i < c->nexcs; i++) {
            if (i)
                rc = sl_buf_addc(out, ',');
            rc = rc ? rc : exc_json(out, &c->excs[i], keep);
        }
        rc = rc ? rc : ADDLIT(out, "]}");
    }

    /* tags: the source's drain tags, then ours where they do not name the same key */
    struct sl_str theirs = obj_inner(cx->tags_json);
    if (!rc)
        rc = ADDLIT(out, ",\"tags\":{");
    bool tfirst = true;
    if (!rc && theirs.len) {
        rc = sl_buf_add(out, theirs.p, theirs.len);
        tfirst = false;
    }
    char dyno_type[64] = "";
    if (cx->server_name) {
        snprintf(dyno_type, sizeof(dyno_type), "%s", cx->server_name);
        char *dot = strchr(dyno_type, '.');
        if (dot)
            *dot = '\0';
    }
    rc = rc ? rc : tag(out, &tfirst, theirs, "source", cx->source_name);
    rc = rc ? rc : tag(out, &tfirst, theirs, "dyno", cx->server_name);
    rc = rc ? rc : tag(out, &tfirst, theirs, "dyno_type", dyno_type);
    rc = rc ? rc : tag(out, &tfirst, theirs, "crash_language", platform_name(c->lang));
    if (c->platform_code)
        rc = rc ? rc : tag(out, &tfirst, theirs, "heroku_error", c->platform_code);
    if (c->truncated)
        rc = rc ? rc : tag(out, &tfirst, theirs, "truncated", "true");
    rc = rc ? rc : sl_buf_addc(out, '}');

    if (!rc && cx->breadcrumbs_json && *cx->breadcrumbs_json) {
        rc = ADDLIT(out, ",\"breadcrumbs\":{\"values\":");
        rc = rc ? rc : sl_buf_add(out, cx->breadcrumbs_json, strlen(cx->breadcrumbs_json));
        rc = rc ? rc : sl_buf_addc(out, '}');
    }

    if (!rc)
        rc = sl_buf_addf(out,
                         ",\"extra\":{\"sluice.first_id\":\"%lld\",\"sluice.last_id\":\"%lld\""
                         ",\"sluice.lines\":%zu,\"sluice.truncated\":%s,\"sluice.line_ids\":[",
                         (long long)c->first_id, (long long)c->last_id, c->nlines,
                         c->truncated ? "true" : "false");
    for (size_t i = 0; !rc && i < c->nlines; i++)
        rc = sl_buf_addf(out, "%s\"%lld\"", i ? "," : "", (long long)c->line_ids[i]);
    rc = rc ? rc : sl_buf_addc(out, ']');
    if (!rc && cx->search_url) {
        bool f2 = false;
        rc = jkv(out, &f2, "sluice.search_url", cx->search_url);
    }
    rc = rc ? rc : sl_buf_addc(out, '}');
    rc = rc ? rc : ADDLIT(out, ",\"fingerprint\":[");
    rc = rc ? rc : jstr(out, c->fingerprint);
    rc = rc ? rc : ADDLIT(out, "],\"sdk\":{\"name\":\"sluice.crash\",\"version\":\"1\"}}");
    return rc;
}

/* ---- Sentry: DSN, auth, envelope, rate limits --------------------------------------- */

static int why(char *w, size_t cap, const char *msg)
{
    if (w && cap)
        snprintf(w, cap, "%s", msg);
    return SL_EINVAL;
}

static bool cpy(char *dst, size_t cap, struct sl_str s)
{
    if (s.len >= cap)
        return false;
    memcpy(dst, s.p, s.len);
    dst[s.len] = '\0';
    return true;
}

int sl_crash_dsn_parse(const char *dsn, struct sl_crash_dsn *out, char *w, size_t wcap)
{
    memset(out, 0, sizeof(*out));
    if (!dsn || !*dsn)
        return why(w, wcap, "empty DSN");
    struct sl_str s = sl_str_make(dsn, strlen(dsn));
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.p[i] <= ' ' || (unsigned char)s.p[i] >= 0x7f)
            return why(w, wcap, "a DSN has no spaces or control or non-ASCII characters");
    const char *sep = find(s, "://");
    if (!sep)
        return why(w, wcap, "no scheme: a DSN looks like https://KEY@HOST/PROJECT_ID");
    struct sl_str scheme = sl_str_make(s.p, (size_t)(sep - s.p));
    if (!sl_str_eq(scheme, "https") && !sl_str_eq(scheme, "http"))
        return why(w, wcap, "scheme must be https or http");
    cpy(out->scheme, sizeof(out->scheme), scheme);
    struct sl_str rest = sl_str_make(sep + 3, s.len - (size_t)(sep + 3 - s.p));
    if (memchr(rest.p, '?', rest.len) || memchr(rest.p, '#', rest.len))
        return why(w, wcap, "a DSN has no query or fragment");
    const char *slash = memchr(rest.p, '/', rest.len);
    struct sl_str auth = slash ? sl_str_make(rest.p, (size_t)(slash - rest.p)) : rest;
    const char *at = NULL;
    for (size_t i = 0; i < auth.len; i++)
        if (auth.p[i] == '@')
            at = auth.p + i;
    if (!at)
        return why(w, wcap, "no public key (KEY@ before the host)");
    struct sl_str user = sl_str_make(auth.p, (size_t)(at - auth.p));
    const char *colon = memchr(user.p, ':', user.len);
    struct sl_str key = colon ? sl_str_make(user.p, (size_t)(colon - user.p)) : user;
    if (key.len == 0)
        return why(w, wcap, "no public key (KEY@ before the host)");
    for (size_t i = 0; i < key.len; i++)
        if (!sl_ascii_alnum((unsigned char)key.p[i]) && key.p[i] != '-' && key.p[i] != '_')
            return why(w, wcap, "the public key may hold only letters, digits, - and _");
    if (!cpy(out->public_key, sizeof(out->public_key), key))
        return why(w, wcap, "public key too long");
    struct sl_str hp = sl_str_make(at + 1, auth.len - (size_t)(at + 1 - auth.p));
    struct sl_str host = hp, port = SL_STR_NULL;
    if (hp.len && hp.p[0] == '[') {
        const char *rb = memchr(hp.p, ']', hp.len);
        if (!rb)
            return why(w, wcap, "unclosed [ in the host");
        host = sl_str_make(hp.p, (size_t)(rb - hp.p) + 1);
        if ((size_t)(rb + 1 - hp.p) < hp.len) {
            if (rb[1] != ':')
                return why(w, wcap, "junk after the host");
            port = sl_str_make(rb + 2, hp.len - (size_t)(rb + 2 - hp.p));
        }
    } else {
        const char *pc = memchr(hp.p, ':', hp.len);
        if (pc) {
            host = sl_str_make(hp.p, (size_t)(pc - hp.p));
            port = sl_str_make(pc + 1, hp.len - (size_t)(pc + 1 - hp.p));
        }
    }
    if (host.len == 0)
        return why(w, wcap, "no host");
    for (size_t i = 0; i < host.len; i++) {
        unsigned char ch = (unsigned char)host.p[i];
        if (!(sl_ascii_alnum(ch) || ch == '-' || ch == '.' || ch == '[' || ch == ']' || ch == ':'))
            return why(w, wcap, "bad character in the host");
    }
    if (!cpy(out->host, sizeof(out->host), host))
        return why(w, wcap, "host too long");
    if (port.p) {
        if (!all_digits(port) || port.len > 5 || to_int(port) < 1 || to_int(port) > 65535)
            return why(w, wcap, "port must be a number from 1 to 65535");
        out->port = to_int(port);
    }
    if (!slash)
        return why(w, wcap, "no project id (the DSN's path ends with /PROJECT_ID)");
    struct sl_str path = sl_str_make(slash, rest.len - (size_t)(slash - rest.p));
    while (path.len > 1 && path.p[path.len - 1] == '/')
        path.len--;
    size_t last = 0;
    for (size_t i = 0; i < path.len; i++)
        if (path.p[i] == '/')
            last = i;
    struct sl_str project = sl_str_make(path.p + last + 1, path.len - last - 1);
    if (project.len == 0)
        return why(w, wcap, "no project id (the DSN's path ends with /PROJECT_ID)");
    if (!all_digits(project))
        return why(w, wcap, "project id must be numeric");
    if (!cpy(out->project_id, sizeof(out->project_id), project))
        return why(w, wcap, "project id too long");
    if (!cpy(out->path, sizeof(out->path), sl_str_make(path.p, last)))
        return why(w, wcap, "path too long");
    char portbuf[16] = "";
    if (out->port)
        snprintf(portbuf, sizeof(portbuf), ":%d", out->port);
    int n = snprintf(out->envelope_url, sizeof(out->envelope_url), "%s://%s%s%s/api/%s/envelope/",
                     out->scheme, out->host, portbuf, out->path, out->project_id);
    if (n < 0 || (size_t)n >= sizeof(out->envelope_url))
        return why(w, wcap, "DSN too long");
    return 0;
}

int sl_crash_auth_header(const struct sl_crash_dsn *d, const char *version, struct sl_buf *out)
{
    return sl_buf_addf(out, "Sentry sentry_version=7, sentry_client=sluice/%s, sentry_key=%s",
                       version && *version ? version : "0", d->public_key);
}

int sl_crash_envelope(const struct sl_crash_dsn *d, const char *event_id, int64_t sent_at_us,
                      struct sl_str event_json, struct sl_buf *out)
{
    char portbuf[16] = "";
    if (d->port)
        snprintf(portbuf, sizeof(portbuf), ":%d", d->port);
    int rc = ADDLIT(out, "{\"event_id\":");
    rc = rc ? rc : jstr(out, event_id);
    rc = rc ? rc : ADDLIT(out, ",\"sent_at\":");
    rc = rc ? rc : rfc3339(out, sent_at_us);
    rc = rc ? rc
            : sl_buf_addf(out, ",\"dsn\":\"%s://%s@%s%s%s/%s\"}\n", d->scheme, d->public_key,
                          d->host, portbuf, d->path, d->project_id);
    rc = rc ? rc
            : sl_buf_addf(out,
                          "{\"type\":\"event\",\"length\":%zu,\"content_type\":"
                          "\"application/json\"}\n",
                          event_json.len);
    rc = rc ? rc : sl_buf_add(out, event_json.p, event_json.len);
    rc = rc ? rc : sl_buf_addc(out, '\n');
    return rc;
}

/* IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7); -1 when not one. */
static int64_t http_date(const char *s)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    struct tm tm;
    char mon[4], zone[4];
    int day, year, h, m, sec;
    memset(&tm, 0, sizeof(tm));
    const char *comma = strchr(s, ',');
    if (!comma)
        return -1;
    if (sscanf(comma + 1, " %d %3s %d %d:%d:%d %3s", &day, mon, &year, &h, &m, &sec, zone) != 7)
        return -1;
    const char *mp = strstr(months, mon);
    if (!mp || strlen(mon) != 3 || (mp - months) % 3 != 0 || strcmp(zone, "GMT") != 0)
        return -1;
    tm.tm_mday = day;
    tm.tm_mon = (int)((mp - months) / 3);
    tm.tm_year = year - 1900;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    return (int64_t)t * 1000000;
}

/* Seconds as Sentry sends them ("60", "2.5"); -1 when not a number. */
static int64_t secs_us(struct sl_str s)
{
    s = rtrim(ltrim(s));
    if (s.len == 0 || s.len > 20)
        return -1;
    int64_t whole = 0, frac = 0, scale = 1000000;
    size_t i = 0;
    for (; i < s.len && sl_ascii_digit((unsigned char)s.p[i]); i++)
        if (whole <= 100000000)
            whole = whole * 10 + (s.p[i] - '0');
        else
            return -1; /* more than three years: not a delay anyone means */
    if (i == 0)
        return -1;
    if (i < s.len && s.p[i] == '.') {
        for (i++; i < s.len && sl_ascii_digit((unsigned char)s.p[i]); i++) {
            if (scale > 1) {
                scale /= 10;
                frac += (s.p[i] - '0') * scale;
            }
        }
    }
    if (i != s.len || whole > 100000000)
        return -1;
    return whole * 1000000 + frac;
}

int64_t sl_crash_rate_limit_until(int status, const char *retry_after,
                                  const char *x_sentry_rate_limits, int64_t now_us)
{
    int64_t until = 0;
    if (x_sentry_rate_limits && *x_sentry_rate_limits) {
        /* "60:error;transaction:organization:reason, 2700:default:project" */
        struct sl_str h = sl_str_make(x_sentry_rate_limits, strlen(x_sentry_rate_limits));
        bool any = false;
        while (h.len) {
            const char *comma = memchr(h.p, ',', h.len);
            struct sl_str item = comma ? sl_str_make(h.p, (size_t)(comma - h.p)) : h;
            h = comma ? skip(h, item.len + 1) : sl_str_make(h.p + h.len, 0);
            item = rtrim(ltrim(item));
            const char *c1 = memchr(item.p, ':', item.len);
            struct sl_str secs = c1 ? sl_str_make(item.p, (size_t)(c1 - item.p)) : item;
            int64_t us = secs_us(secs);
            if (us < 0)
                continue;
            any = true;
            struct sl_str cats = SL_STR_NULL;
            if (c1) {
                struct sl_str r = sl_str_make(c1 + 1, item.len - (size_t)(c1 + 1 - item.p));
                const char *c2 = memchr(r.p, ':', r.len);
                cats = c2 ? sl_str_make(r.p, (size_t)(c2 - r.p)) : r;
            }
            bool hit = cats.len == 0;
            while (!hit && cats.len) {
                const char *sc = memchr(cats.p, ';', cats.len);
                struct sl_str cat = sc ? sl_str_make(cats.p, (size_t)(sc - cats.p)) : cats;
                cats = sc ? skip(cats, cat.len + 1) : sl_str_make(cats.p + cats.len, 0);
                cat = rtrim(ltrim(cat));
                if (sl_str_eq(cat, "error"))
                    hit = true;
            }
            if (hit && now_us + us > until)
                until = now_us + us;
        }
        if (any)
            return until;
    }
    if (status != 429)
        return 0;
    if (retry_after && *retry_after) {
        int64_t us = secs_us(sl_str_make(retry_after, strlen(retry_after)));
        if (us >= 0)
            return now_us + (us > 0 ? us : 1000000);
        int64_t at = http_date(retry_after);
        if (at >= 0)
            return at > now_us ? at : now_us + 1000000;
    }
    return now_us + 60 * 1000000LL;
}
