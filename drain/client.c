/* `sluice search` and `sluice tail [-f]`: the command-line client of the search and tail
 * API (docs/api.md), modelled on papertrail-cli (its line layout, its colours by host and
 * program). Runs on the CLI's main thread; libcurl easy interface, cJSON for answers.
 *
 * The pure parts come first (arguments, cli.conf, the Server-Sent Events parser of the
 * WHATWG HTML spec §9.2.6, the line formatter); the I/O is at the end. This module uses
 * two libraries (libcurl and cJSON) where the house rule says one: the formatter takes
 * plain strings (struct sl_client_line), so only the answer-reading code touches cJSON
 * and every pure part is tested without either.
 *
 * search pages /api/v1/search newest first (order=desc, next_cursor, at most 10000 a
 * page), pins the window the first answer reports so later pages see the same one, and
 * prints oldest first. tail prints the newest -n lines the same way; with -f it follows
 * /api/v1/tail from the highest id printed (Last-Event-ID; lines of other nodes committed
 * after it may come again and are printed once) and, when the stream ends or fails,
 * reconnects with the last event's id after a backoff (the server's retry:, doubling to
 * 30 s), so nothing is printed twice and nothing is skipped. Ids are unique but do not grow
 * in commit order across nodes: the stream's order is the commit order. Ctrl-C ends it
 * with status 0. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "sluice/client.h"
#include "sluice/enc.h"
#include "sluice/fields.h"
#include "sluice/rfc5424.h"
#include "sluice/search.h"

/* ================================================================== arguments */

/* err = before a after */
static int arg_err(char *err, size_t cap, const char *before, const char *a, const char *after)
{
    if (cap > 0)
        snprintf(err, cap, "%s%s%s", before, a, after);
    return SL_EINVAL;
}

static int parse_count(const char *s, long min, long max, long *out)
{
    long v = 0;

    if (s == NULL || *s == '\0')
        return SL_EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return SL_EINVAL;
        v = v * 10 + (*s - '0');
        if (v > max)
            return SL_EINVAL;
    }
    if (v < min)
        return SL_EINVAL;
    *out = v;
    return 0;
}

/* "--name=value" or "--name value": the value, advancing *i, or NULL (missing). */
static const char *opt_value(const char *arg, const char *name, int argc, char **argv, int *i,
                             bool *matched)
{
    size_t n = strlen(name);

    *matched = false;
    if (strncmp(arg, name, n) != 0)
        return NULL;
    if (arg[n] == '=') {
        *matched = true;
        return arg + n + 1;
    }
    if (arg[n] != '\0')
        return NULL;
    *matched = true;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

int sl_client_args(enum sl_client_cmd cmd, int argc, char **argv, struct sl_client_opts *o,
                   char *err, size_t cap)
{
    bool only_words = false;
    size_t qlen = 0;
    /* the options whose value is a non-empty text kept as it is */
    const struct {
        const char *name, *needs;
        const char **slot;
        bool search_only;
    } texts[] = {
        {"--url", " needs a value", &o->url, false},
        {"--token", " needs a value", &o->token, false},
        {"--cacert", " needs a file", &o->cacert, false},
        {"--since", " needs a time", &o->since, true},
        {"--until", " needs a time", &o->until, true},
    };

    memset(o, 0, sizeof(*o));
    o->cmd = cmd;
    o->limit = cmd == SL_CLIENT_SEARCH ? 100 : 20;
    o->color = SL_CLIENT_COLOR_AUTO;
    if (cap > 0)
        err[0] = '\0';

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        bool m;
        size_t k;

        if (only_words || a[0] != '-' || a[1] == '\0') {
            size_t n = strlen(a);
            if (qlen + (qlen ? 1 : 0) + n > SL_CLIENT_MAX_QUERY)
                return arg_err(err, cap, "the query is longer than ", "4096", " bytes");
            if (qlen)
                o->query[qlen++] = ' ';
            memcpy(o->query + qlen, a, n);
            qlen += n;
            o->query[qlen] = '\0';
            continue;
        }
        if (!strcmp(a, "--")) {
            only_words = true;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            o->help = true;
            continue;
        }
        if (!strcmp(a, "--json") || !strcmp(a, "-j")) { /* -j: papertrail-cli's */
            o->json = true;
            continue;
        }
        if (!strcmp(a, "--color")) {
            o->color = SL_CLIENT_COLOR_ALWAYS;
            continue;
        }
        if (!strcmp(a, "--no-color")) {
            o->color = SL_CLIENT_COLOR_NEVER;
            continue;
        }
        if (!strncmp(a, "--color=", 8)) {
            if (!strcmp(a + 8, "always"))
                o->color = SL_CLIENT_COLOR_ALWAYS;
            else if (!strcmp(a + 8, "never"))
                o->color = SL_CLIENT_COLOR_NEVER;
            else if (!strcmp(a + 8, "auto"))
                o->color = SL_CLIENT_COLOR_AUTO;
            else
                return arg_err(err, cap, "--color takes always, never or auto, not '", a + 8, "'");
            continue;
        }
        if (!strcmp(a, "--insecure") || !strcmp(a, "-k")) {
            o->insecure = true;
            continue;
        }
        if (cmd == SL_CLIENT_TAIL && (!strcmp(a, "-f") || !strcmp(a, "--follow"))) {
            o->follow = true;
            continue;
        }
        /* -s NAME and --system NAME: papertrail-cli's spelling of a source */
        if (!strcmp(a, "-s"))
            v = i + 1 < argc ? argv[++i] : NULL, m = true;
        else if ((v = opt_value(a, "--source", argc, argv, &i, &m)) == NULL && !m)
            v = opt_value(a, "--system", argc, argv, &i, &m);
        if (v != NULL || m) {
            if (v == NULL || *v == '\0')
                return arg_err(err, cap, "", "--source", " needs a source name");
            if (o->nsources == SL_CLIENT_MAX_SOURCES)
                return arg_err(err, cap, "more than ", "64", " --source options");
            o->sources[o->nsources++] = v;
            continue;
        }
        for (k = 0; k < sizeof(texts) / sizeof(texts[0]); k++)
            if ((!texts[k].search_only || cmd == SL_CLIENT_SEARCH) &&
                ((v = opt_value(a, texts[k].name, argc, argv, &i, &m)) != NULL || m))
                break;
        if (k < sizeof(texts) / sizeof(texts[0])) {
            if (v == NULL || *v == '\0')
                return arg_err(err, cap, "", texts[k].name, texts[k].needs);
            *texts[k].slot = v;
            continue;
        }
        if (cmd == SL_CLIENT_SEARCH) {
            if ((v = opt_value(a, "--limit", argc, argv, &i, &m)) != NULL || m) {
                if (parse_count(v, 1, SL_CLIENT_MAX_LIMIT, &o->limit))
                    return arg_err(err, cap, "--limit takes a number of lines (1 or more), not '",
                                   v ? v : "", "'");
                continue;
            }
        } else {
            if (!strcmp(a, "-n"))
                v = i + 1 < argc ? argv[++i] : NULL, m = true;
            else if (!strncmp(a, "-n", 2) && a[2] >= '0' && a[2] <= '9')
                v = a + 2, m = true; /* -n50, as tail(1) takes it */
            else
                v = opt_value(a, "--lines", argc, argv, &i, &m);
            if (m) {
                if (parse_count(v, 0, SL_CLIENT_MAX_LIMIT, &o->limit))
                    return arg_err(err, cap, "-n takes a number of lines, not '", v ? v : "", "'");
                continue;
            }
        }
        return arg_err(err, cap, "unknown option ", a,
                       " (put `--` before a query that starts with '-')");
    }
    return 0;
}

/* ================================================================== cli.conf */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

int sl_client_conf_parse(const char *text, size_t len, struct sl_client_conf *c, size_t *bad_line)
{
    size_t i = 0, lineno = 0;

    while (i < len) {
        size_t end = i, ks, ke, vs, ve;
        char **slot;
        char *val;

        lineno++;
        while (end < len && text[end] != '\n')
            end++;
        ks = i;
        ve = end;
        i = end + 1;
        while (ks < ve && is_space(text[ks]))
            ks++;
        while (ve > ks && is_space(text[ve - 1]))
            ve--;
        if (ks == ve || text[ks] == '#')
            continue;
        ke = ks;
        while (ke < ve && text[ke] != '=' && !is_space(text[ke]))
            ke++;
        vs = ke;
        while (vs < ve && is_space(text[vs]))
            vs++;
        if (vs == ve || text[vs] != '=')
            goto bad;
        vs++;
        while (vs < ve && is_space(text[vs]))
            vs++;
        if (ve - vs >= 2 && text[vs] == '"' && text[ve - 1] == '"')
            vs++, ve--;
        if (ke - ks == 3 && !memcmp(text + ks, "url", 3))
            slot = &c->url;
        else if (ke - ks == 5 && !memcmp(text + ks, "token", 5))
            slot = &c->token;
        else if (ke - ks == 6 && !memcmp(text + ks, "cacert", 6))
            slot = &c->cacert;
        else
            goto bad;
        if (memchr(text + vs, '\0', ve - vs) != NULL)
            goto bad;
        val = malloc(ve - vs + 1);
        if (val == NULL)
            return SL_ENOMEM;
        memcpy(val, text + vs, ve - vs);
        val[ve - vs] = '\0';
        free(*slot);
        *slot = val;
    }
    return 0;
bad:
    if (bad_line)
        *bad_line = lineno;
    return SL_EPARSE;
}

void sl_client_conf_free(struct sl_client_conf *c)
{
    if (c == NULL)
        return;
    free(c->url);
    free(c->token);
    free(c->cacert);
    c->url = c->token = c->cacert = NULL;
}

int sl_client_conf_path(const char *xdg, const char *home, char *out, size_t cap)
{
    int n;

    if (xdg && *xdg)
        n = snprintf(out, cap, "%s/sluice/cli.conf", xdg);
    else if (home && *home)
        n = snprintf(out, cap, "%s/.config/sluice/cli.conf", home);
    else
        return SL_ENOTFOUND;
    return n < 0 || (size_t)n >= cap ? SL_ETOOBIG : 0;
}

/* ================================================================== Server-Sent Events */

void sl_sse_init(struct sl_sse *p, size_t max)
{
    sl_buf_init(&p->line, max);
    sl_buf_init(&p->data, max);
    sl_buf_init(&p->event, 256);
    sl_buf_init(&p->id, 256);
    p->retry_ms = -1;
    p->cr = false;
    p->first = true;
    p->id_here = false;
}

void sl_sse_reset(struct sl_sse *p)
{
    sl_buf_reset(&p->line);
    sl_buf_reset(&p->data);
    sl_buf_reset(&p->event);
    p->cr = false;
    p->first = true;
    p->id_here = false;
}

void sl_sse_free(struct sl_sse *p)
{
    if (p == NULL)
        return;
    sl_buf_free(&p->line);
    sl_buf_free(&p->data);
    sl_buf_free(&p->event);
    sl_buf_free(&p->id);
}

/* Keep a NUL after the contents so callbacks get C strings. */
static int buf_set(struct sl_buf *b, const char *s, size_t n)
{
    int rc;

    sl_buf_reset(b);
    if ((rc = sl_buf_reserve(b, n + 1)))
        return rc;
    if (n)
        memcpy(b->p, s, n);
    b->len = n;
    b->p[n] = '\0';
    return 0;
}

static int sse_dispatch(struct sl_sse *p, sl_sse_cb cb, void *arg)
{
    struct sl_sse_event ev;
    int rc;

    if (p->data.len == 0) {
        /* No data: nothing is dispatched (the spec), the event type is forgotten. */
        sl_buf_reset(&p->event);
        p->id_here = false;
        return 0;
    }
    p->data.len--; /* the "\n" after the last data line */
    p->data.p[p->data.len] = '\0';
    ev.type = p->event.len ? p->event.p : "message";
    ev.type_len = p->event.len ? p->event.len : 7;
    ev.data = p->data.p;
    ev.data_len = p->data.len;
    ev.id = p->id.len ? p->id.p : "";
    ev.id_len = p->id.len;
    ev.id_here = p->id_here;
    rc = cb(&ev, arg);
    sl_buf_reset(&p->data);
    sl_buf_reset(&p->event);
    p->id_here = false;
    return rc;
}

static int sse_line(struct sl_sse *p, const char *line, size_t len, sl_sse_cb cb, void *arg)
{
    const char *colon, *val;
    size_t nlen, vlen;
    int rc;

    if (p->first) {
        p->first = false;
        if (len >= 3 && !memcmp(line, "\xEF\xBB\xBF", 3))
            line += 3, len -= 3;
    }
    if (len == 0)
        return sse_dispatch(p, cb, arg);
    if (line[0] == ':')
        return 0; /* comment (the server's keep-alive) */
    colon = memchr(line, ':', len);
    if (colon) {
        nlen = (size_t)(colon - line);
        val = colon + 1;
        vlen = len - nlen - 1;
        if (vlen > 0 && val[0] == ' ')
            val++, vlen--;
    } else {
        nlen = len;
        val = "";
        vlen = 0;
    }
    if (nlen == 5 && !memcmp(line, "event", 5))
        return buf_set(&p->event, val, vlen);
    if (nlen == 4 && !memcmp(line, "data", 4)) {
        if ((rc = sl_buf_reserve(&p->data, vlen + 2)))
            return rc;
        memcpy(p->data.p + p->data.len, val, vlen);
        p->data.len += vlen;
        p->data.p[p->data.len++] = '\n';
        p->data.p[p->data.len] = '\0';
        return 0;
    }
    if (nlen == 2 && !memcmp(line, "id", 2)) {
        if (memchr(val, '\0', vlen) != NULL)
            return 0; /* the spec ignores such an id */
        p->id_here = true;
        return buf_set(&p->id, val, vlen);
    }
    if (nlen == 5 && !memcmp(line, "retry", 5)) {
        long ms = 0;
        if (vlen == 0)
            return 0;
        for (size_t i = 0; i < vlen; i++) {
            if (val[i] < '0' || val[i] > '9')
                return 0;
            if (ms < 100000000)
                ms = ms * 10 + (val[i] - '0');
        }
        p->retry_ms = ms;
        return 0;
    }
    return 0; /* unknown fields are ignored */
}

int sl_sse_feed(struct sl_sse *p, const char *buf, size_t len, sl_sse_cb cb, void *arg)
{
    size_t i = 0;
    int rc;

    while (i < len) {
        size_t j = i;
        const char *line;
        size_t ll;

        if (p->cr) {
            p->cr = false;
            if (buf[i] == '\n') {
                i++;
                continue;
            }
        }
        while (j < len && buf[j] != '\n' && buf[j] != '\r')
            j++;
        if (j == len)
            return sl_buf_add(&p->line, buf + i, len - i);
        if (p->line.len) {
            if ((rc = sl_buf_add(&p->line, buf + i, j - i)))
                return rc;
            line = p->line.p;
            ll = p->line.len;
        } else {
            line = buf + i;
            ll = j - i;
        }
        p->cr = buf[j] == '\r';
        i = j + 1;
        rc = sse_line(p, line, ll, cb, arg);
        sl_buf_reset(&p->line);
        if (rc)
            return rc;
    }
    return 0;
}

/* ================================================================== output */

int sl_client_color_of(const char *s, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return 31 + (int)(h % 6); /* red..cyan: white and black vanish on some terminals */
}

/* Append s with control characters made visible. */
static int add_text(struct sl_buf *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t start = 0, i = 0;
    int rc;

    for (;; i++) {
        unsigned char c = u[i];
        char esc[8];
        size_t elen = 0;

        if (c == '\0' || c < 0x20 || c == 0x7f ||
            (c == 0xc2 && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f)) {
            if (c == '\t') /* tabs are text */
                continue;
            if ((rc = sl_buf_add(out, s + start, i - start)))
                return rc;
            if (c == '\0')
                return 0;
            if (c == '\n')
                memcpy(esc, "\\n", elen = 2);
            else if (c == '\r')
                memcpy(esc, "\\r", elen = 2);
            else if (c == 0xc2) { /* C1 control U+0080..U+009F (U+009B is a CSI) */
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[u[i + 1] >> 4];
                esc[5] = hex[u[i + 1] & 15];
                elen = 6;
                i++;
            } else {
                esc[0] = '\\';
                esc[1] = 'x';
                esc[2] = hex[c >> 4];
                esc[3] = hex[c & 15];
                elen = 4;
            }
            if ((rc = sl_buf_add(out, esc, elen)))
                return rc;
            start = i + 1;
        }
    }
}

static int add_colored(struct sl_buf *out, const char *s, bool color)
{
    int rc;

    if (!color)
        return add_text(out, s);
    if ((rc = sl_buf_addf(out, "\033[%dm", sl_client_color_of(s, strlen(s)))) ||
        (rc = add_text(out, s)) || (rc = sl_buf_add(out, "\033[0m", 4)))
        return rc;
    return 0;
}

/* ------------------------------------------------------------------ JSON lines */

#define SHOW_FIELDS 64 /* leaves a plain line shows; the rest is "..." */

struct shown {
    size_t n, more;
    struct {
        char path[SL_JSON_PATH_MAX + 1];
        struct sl_jleaf leaf;
    } f[SHOW_FIELDS];
};

static int collect_leaf(void *arg, const char *path, size_t plen, const struct sl_jleaf *leaf)
{
    struct shown *sh = arg;

    for (size_t k = 0; k < sh->n; k++)
        if (strcmp(sh->f[k].path, path) == 0) { /* the last duplicate wins, in place */
            sh->f[k].leaf = *leaf;
            return 0;
        }
    if (sh->n == SHOW_FIELDS) {
        sh->more++;
        return 0;
    }
    memcpy(sh->f[sh->n].path, path, plen + 1);
    sh->f[sh->n++].leaf = *leaf;
    return 0;
}

/* A message holding a JSON object is shown as its prefix then its leaves, logfmt style:
 * level=error msg="charge failed" user.id=42 (a string is quoted when it holds a space,
 * a quote or '=', or is empty); any other message as it is. */
static int add_message(struct sl_buf *out, const char *msg)
{
    struct sl_json_at at;
    struct shown *sh;
    struct sl_buf tmp;
    int rc = 0;

    if (msg == NULL)
        return 0;
    if (!sl_fields_json_find(msg, strlen(msg), &at))
        return add_text(out, msg);
    if ((sh = calloc(1, sizeof(*sh))) == NULL)
        return SL_ENOMEM;
    sl_buf_init(&tmp, SL_JSON_MAX_BYTES + 1);
    (void)sl_fields_json_walk(msg + at.off, strlen(msg) - at.off, collect_leaf, sh);
    if (at.off > 0) {
        char *pre = strndup(msg, at.off);
        rc = pre ? add_text(out, pre) : SL_ENOMEM;
        free(pre);
    }
    for (size_t k = 0; k < sh->n && rc == 0; k++) {
        const struct sl_jleaf *lf = &sh->f[k].leaf;
        bool quote = false;
        if (k > 0 && (rc = sl_buf_addc(out, ' ')))
            break;
        if ((rc = add_text(out, sh->f[k].path)) || (rc = sl_buf_addc(out, '=')))
            break;
        sl_buf_reset(&tmp);
        rc = lf->type == SL_J_STRING ? sl_fields_json_unescape(lf->raw, &tmp)
                                     : sl_buf_add(&tmp, lf->raw.p, lf->raw.len);
        if (rc == 0)
            rc = sl_buf_addc(&tmp, '\0');
        if (rc)
            break;
        if (lf->type == SL_J_STRING)
            quote = tmp.len == 1 || strpbrk(tmp.p, " \"=") != NULL;
        if (quote)
            rc = sl_buf_addc(out, '"');
        if (rc == 0)
            rc = add_text(out, tmp.p);
        if (rc == 0 && quote)
            rc = sl_buf_addc(out, '"');
    }
    if (rc == 0 && sh->more > 0)
        rc = sl_buf_addf(out, " ...(%zu more)", sh->more);
    sl_buf_free(&tmp);
    free(sh);
    return rc;
}

int sl_client_format(const struct sl_client_line *l, bool color, bool local, struct sl_buf *out)
{
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const char *app = l->app_name && *l->app_name ? l->app_name : NULL;
    const char *proc = l->procid && *l->procid ? l->procid : NULL;
    size_t mark = out->len;
    int64_t us;
    int fd, off;
    int rc = 0;

    if (l->received_at &&
        sl_rfc3339_parse(l->received_at, strlen(l->received_at), &us, &fd, &off) == 0) {
        time_t t = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
        struct tm tm;
        if ((local ? localtime_r(&t, &tm) : gmtime_r(&t, &tm)) != NULL && tm.tm_mon >= 0 &&
            tm.tm_mon < 12)
            rc = sl_buf_addf(out, "%s %02d %02d:%02d:%02d ", mon[tm.tm_mon], tm.tm_mday, tm.tm_hour,
                             tm.tm_min, tm.tm_sec);
        else
            rc = sl_buf_addf(out, "%s ", l->received_at);
    } else {
        if ((rc = add_text(out, l->received_at ? l->received_at : "-")) == 0)
            rc = sl_buf_addc(out, ' ');
    }
    if (rc)
        goto fail;
    if ((rc = add_colored(out, l->hostname && *l->hostname ? l->hostname : "-", color)) ||
        (rc = sl_buf_addc(out, ' ')))
        goto fail;
    if (app && proc) {
        /* One colour for the pair: a program is its app/proc, as papertrail-cli's. */
        char *both = malloc(strlen(app) + strlen(proc) + 2);
        if (both == NULL) {
            rc = SL_ENOMEM;
            goto fail;
        }
        sprintf(both, "%s/%s", app, proc);
        rc = add_colored(out, both, color);
        free(both);
    } else
        rc = add_colored(out, app ? app : proc ? proc : "-", color);
    if (rc || (rc = sl_buf_add(out, ": ", 2)) || (rc = add_message(out, l->message)) ||
        (rc = sl_buf_addc(out, '\n')))
        goto fail;
    return 0;
fail:
    out->len = mark;
    return rc;
}

int sl_client_url_param(struct sl_buf *url, const char *key, const char *value)
{
    size_t mark = url->len;
    bool has_q = url->len && memchr(url->p, '?', url->len) != NULL;
    int rc;

    if ((rc = sl_buf_addc(url, has_q ? '&' : '?')) || (rc = sl_buf_add(url, key, strlen(key))) ||
        (rc = sl_buf_addc(url, '=')) || (rc = sl_enc_pct(url, value, strlen(value), false)))
        goto fail;
    return 0;
fail:
    url->len = mark;
    return rc;
}

int sl_client_id_parse(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0 || len > 20)
        return SL_EPARSE;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return SL_EPARSE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

const char *sl_client_errmsg(const char *body, size_t len, char *out, size_t cap)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const char *r = NULL;

    if (cap > 0 && cJSON_IsString(e) && e->valuestring) {
        snprintf(out, cap, "%s", e->valuestring);
        r = out;
    }
    cJSON_Delete(j);
    return r;
}

/* The end of the JSON value starting at s[i] (after any whitespace before it is skipped
 * by the caller), or SIZE_MAX when it is not one. Only as strict as slicing needs: the
 * answer was parsed by cJSON as well, and the two must agree on the number of events. */
static size_t json_ws(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

static size_t json_skip(const char *s, size_t len, size_t i, int depth)
{
    size_t start = i;

    if (i >= len || depth > 64)
        return SIZE_MAX;
    if (s[i] == '"') {
        for (i++; i < len; i++) {
            if (s[i] == '\\')
                i++;
            else if (s[i] == '"')
                return i + 1;
        }
        return SIZE_MAX;
    }
    if (s[i] == '{' || s[i] == '[') {
        char close = s[i] == '{' ? '}' : ']';
        i = json_ws(s, len, i + 1);
        if (i < len && s[i] == close)
            return i + 1;
        for (;;) {
            if (close == '}') {
                if (i >= len || s[i] != '"' || (i = json_skip(s, len, i, depth + 1)) == SIZE_MAX)
                    return SIZE_MAX;
                i = json_ws(s, len, i);
                if (i >= len || s[i] != ':')
                    return SIZE_MAX;
                i = json_ws(s, len, i + 1);
            }
            if ((i = json_skip(s, len, i, depth + 1)) == SIZE_MAX)
                return SIZE_MAX;
            i = json_ws(s, len, i);
            if (i < len && s[i] == ',') {
                i = json_ws(s, len, i + 1);
                continue;
            }
            return i < len && s[i] == close ? i + 1 : SIZE_MAX;
        }
    }
    while (i < len && ((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
                       (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '-' || s[i] == '+' || s[i] == '.'))
        i++;
    return i > start ? i : SIZE_MAX;
}

long sl_client_json_events(const char *body, size_t len, struct sl_str *items, size_t max)
{
    size_t i = json_ws(body, len, 0);
    long n = -1;

    if (i >= len || body[i] != '{')
        return SL_EPARSE;
    i = json_ws(body, len, i + 1);
    if (i < len && body[i] == '}')
        return SL_EPARSE;
    for (;;) {
        size_t ks = i, ke;
        bool events;

        if (i >= len || body[i] != '"' || (ke = json_skip(body, len, i, 1)) == SIZE_MAX)
            return SL_EPARSE;
        events = ke - ks == 8 && !memcmp(body + ks, "\"events\"", 8);
        i = json_ws(body, len, ke);
        if (i >= len || body[i] != ':')
            return SL_EPARSE;
        i = json_ws(body, len, i + 1);
        if (events && i < len && body[i] == '[') {
            n = 0;
            i = json_ws(body, len, i + 1);
            if (i < len && body[i] == ']')
                i++;
            else
                for (;;) {
                    size_t ve = json_skip(body, len, i, 2);
                    if (ve == SIZE_MAX)
                        return SL_EPARSE;
                    if ((size_t)n < max)
                        items[n] = sl_str_make(body + i, ve - i);
                    n++;
                    i = json_ws(body, len, ve);
                    if (i < len && body[i] == ',') {
                        i = json_ws(body, len, i + 1);
                        continue;
                    }
                    if (i >= len || body[i] != ']')
                        return SL_EPARSE;
                    i++;
                    break;
                }
        } else if ((i = json_skip(body, len, i, 1)) == SIZE_MAX)
            return SL_EPARSE;
        i = json_ws(body, len, i);
        if (i < len && body[i] == ',') {
            i = json_ws(body, len, i + 1);
            continue;
        }
        if (i < len && body[i] == '}')
            return n < 0 ? SL_EPARSE : n;
        return SL_EPARSE;
    }
}

static const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *sl_client_missed_notice(const char *data, size_t len, char *out, size_t cap)
{
    cJSON *j = cJSON_ParseWithLength(data, len);
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "missed");
    const char *after = json_str(j, "after_id"), *resume = json_str(j, "resume_id");
    const char *r = NULL;

    if (cap > 0 && cJSON_IsNumber(n)) {
        snprintf(out, cap,
                 "sluice: missed %.0f lines after id %s (up to id %s): the terminal read too "
                 "slowly; `sluice search` shows them",
                 n->valuedouble, after ? after : "?", resume ? resume : "?");
        r = out;
    }
    cJSON_Delete(j);
    return r;
}

/* ================================================================== caps */

size_t sl_client_answer_max(long events)
{
    size_t n = sl_search_answer_max(events > 0 ? (size_t)events : 0,
                                    SL_SEARCH_DEFAULT_MAX_MESSAGE, SL_SEARCH_DEFAULT_MAX_HEADER);

    return n < SL_CLIENT_ANSWER_MAX ? n : SL_CLIENT_ANSWER_MAX;
}

size_t sl_client_lines_max(long limit)
{
    size_t line = sl_search_event_max(SL_SEARCH_DEFAULT_MAX_MESSAGE, SL_SEARCH_DEFAULT_MAX_HEADER);
    size_t n = limit > 0 ? (size_t)limit : 0;

    line = line == SIZE_MAX ? SIZE_MAX : line + 1; /* and its "\n" */
    return n != 0 && line > SIZE_MAX / n ? SIZE_MAX : n * line;
}

/* ================================================================== I/O */

#define ERRBODY_MAX ((size_t)1 << 16) /* an error answer on the tail stream */
#define SSE_MAX ((size_t)16 << 20)    /* one SSE line or event */
#define BACKOFF_MAX_MS 30000L

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

struct cli {
    const struct sl_client_opts *o;
    CURL *easy;
    struct curl_slist *hdrs;
    char *base; /* the server URL without a trailing '/' */
    char *token, *cacert;
    bool color, local;
    char errbuf[CURL_ERROR_SIZE];
    /* one transfer */
    bool stream;
    long status;
    struct sl_buf body;
    bool body_toobig; /* the answer passed body.max: the transfer was stopped */
    /* output */
    struct sl_buf out;
    char last_id[24]; /* where tail -f resumes: the last event's id (after the first lines:
                         the highest id they printed), "" before the first */
    uint64_t last_num;
    /* the first lines' ids, sorted: a stream may send them again (ids do not grow in
     * commit order across nodes, docs/api.md), they are printed once */
    uint64_t *printed;
    size_t nprinted, capprinted;
    /* tail -f */
    struct sl_sse sse;
    bool got_event;
    int write_failed;
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata);
static int on_event(const struct sl_sse_event *ev, void *arg);

static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)clientp, (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return interrupted ? 1 : 0;
}

/* Settings: flags, then the environment, then cli.conf. Returns 0 or an exit status. */
static int cli_settings(struct cli *c)
{
    struct sl_client_conf conf = {NULL, NULL, NULL};
    const struct sl_client_opts *o = c->o;
    const char *url = o->url, *token = o->token, *ca = o->cacert;
    char path[4096];
    size_t n;
    int rc = 2;

    if (url == NULL && getenv("SLUICE_URL") && *getenv("SLUICE_URL"))
        url = getenv("SLUICE_URL");
    if (token == NULL && getenv("SLUICE_TOKEN") && *getenv("SLUICE_TOKEN"))
        token = getenv("SLUICE_TOKEN");
    if (ca == NULL && getenv("SLUICE_CA_FILE") && *getenv("SLUICE_CA_FILE"))
        ca = getenv("SLUICE_CA_FILE");
    path[0] = '\0';
    if ((url == NULL || token == NULL || ca == NULL) &&
        sl_client_conf_path(getenv("XDG_CONFIG_HOME"), getenv("HOME"), path, sizeof(path)) == 0) {
        FILE *f = fopen(path, "r");
        if (f == NULL && errno != ENOENT) {
            fprintf(stderr, "sluice: cannot read %s: %s\n", path, strerror(errno));
            goto out;
        }
        if (f) {
            char *text = NULL;
            size_t bad = 0, cap = 0;
            struct stat st;
            int prc;

            if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) && token == NULL)
                fprintf(stderr,
                        "sluice: warning: %s holds a token and others can read it "
                        "(chmod 600)\n",
                        path);
            n = 0;
            for (;;) {
                char *t;
                size_t got;
                if (cap - n < 4096) {
                    if (cap > (1u << 20)) {
                        fprintf(stderr, "sluice: %s is too big\n", path);
                        free(text);
                        fclose(f);
                        goto out;
                    }
                    t = realloc(text, cap = cap * 2 + 4096);
                    if (t == NULL) {
                        free(text);
                        fclose(f);
                        goto out;
                    }
                    text = t;
                }
                got = fread(text + n, 1, cap - n, f);
                n += got;
                if (got == 0)
                    break;
            }
            fclose(f);
            prc = sl_client_conf_parse(text ? text : "", n, &conf, &bad);
            free(text);
            if (prc) {
                fprintf(stderr,
                        "sluice: %s line %zu: expected `url = ...`, `token = ...` or "
                        "`cacert = ...`\n",
                        path, bad);
                goto out;
            }
        }
    }
    if (url == NULL)
        url = conf.url;
    if (token == NULL)
        token = conf.token;
    if (ca == NULL)
        ca = conf.cacert;
    if (url == NULL || *url == '\0') {
        fprintf(stderr,
                "sluice: no server URL: set SLUICE_URL, pass --url, or put `url = "
                "https://HOST:PORT` in %s\n",
                path[0] ? path : "~/.config/sluice/cli.conf");
        goto out;
    }
    if (token == NULL || *token == '\0') {
        fprintf(stderr,
                "sluice: no read token: set SLUICE_TOKEN, pass --token, or put "
                "`token = slr_...` in %s (`sluice token add` makes one)\n",
                path[0] ? path : "~/.config/sluice/cli.conf");
        goto out;
    }
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        fprintf(stderr, "sluice: the server URL must start with https:// or http://: %s\n", url);
        goto out;
    }
    for (const char *p = token; *p; p++)
        if ((unsigned char)*p < 0x21 || *p == 0x7f) {
            fprintf(stderr, "sluice: the token holds a space or control character\n");
            goto out;
        }
    c->base = strdup(url);
    c->token = strdup(token);
    c->cacert = dup_or_null(ca);
    if (c->base == NULL || c->token == NULL || (ca && c->cacert == NULL)) {
        rc = 1;
        goto out;
    }
    n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = '\0';
    rc = 0;
out:
    sl_client_conf_free(&conf);
    return rc;
}

static int cli_curl(struct cli *c)
{
    struct sl_buf auth;
    CURL *e;
    CURLcode r = CURLE_OK;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    c->easy = e = curl_easy_init();
    if (e == NULL)
        return 1;
    sl_buf_init(&auth, 8192);
    if (sl_buf_addf(&auth, "Authorization: Bearer %s", c->token) || sl_buf_addc(&auth, '\0'))
        return 1;
    c->hdrs = curl_slist_append(NULL, auth.p);
    memset(auth.p, 0, auth.len); /* the token lives on in the slist only */
    sl_buf_free(&auth);
    if (c->hdrs == NULL)
        return 1;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (r == CURLE_OK)                                                                         \
            r = curl_easy_setopt(e, opt, val);                                                     \
    } while (0)
    SET(CURLOPT_ERRORBUFFER, c->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_USERAGENT, "sluice-cli");
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, c);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_CONNECTTIMEOUT, 15L);
    SET(CURLOPT_ACCEPT_ENCODING, ""); /* whatever this libcurl decodes */
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    /* Redirects are not followed: they would carry the token to another place. */
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    if (c->cacert)
        SET(CURLOPT_CAINFO, c->cacert);
    if (c->o->insecure) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    }
#undef SET
    if (r != CURLE_OK) {
        fprintf(stderr, "sluice: libcurl set-up failed: %s\n", curl_easy_strerror(r));
        return 1;
    }
    if (c->o->insecure)
        fprintf(stderr, "sluice: warning: --insecure: the server's certificate is not checked\n");
    return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct cli *c = userdata;
    size_t n = size * nmemb;

    if (c->status == 0)
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->status);
    if (c->stream && c->status == 200) {
        int rc = sl_sse_feed(&c->sse, ptr, n, on_event, c);
        return rc ? 0 : n; /* 0: curl stops with CURLE_WRITE_ERROR */
    }
    if (c->stream && c->body.len + n > ERRBODY_MAX)
        return n; /* the start of an error answer is enough */
    if (sl_buf_add(&c->body, ptr, n)) {
        c->body_toobig = c->body.len + n > c->body.max;
        return 0;
    }
    return n;
}

/* One GET. Returns the curl result; c->status and c->body hold the answer. */
static CURLcode cli_get(struct cli *c, const char *url, const char *last_event_id)
{
    struct curl_slist *h = c->hdrs, *extra = NULL;
    char hdr[64];
    CURLcode r;

    c->status = 0;
    c->body_toobig = false;
    sl_buf_reset(&c->body);
    c->errbuf[0] = '\0';
    if (last_event_id && *last_event_id) {
        snprintf(hdr, sizeof(hdr), "Last-Event-ID: %s", last_event_id);
        extra = curl_slist_append(NULL, hdr);
        if (extra == NULL)
            return CURLE_OUT_OF_MEMORY;
        extra->next = c->hdrs; /* borrowed tail: unlinked below before the free */
        h = extra;
    }
    curl_easy_setopt(c->easy, CURLOPT_URL, url);
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, h);
    if (c->stream) {
        /* No overall time limit; a stream silent for 3 keep-alive periods is dead. */
        curl_easy_setopt(c->easy, CURLOPT_TIMEOUT, 0L);
        curl_easy_setopt(c->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c->easy, CURLOPT_LOW_SPEED_TIME, 50L);
    } else {
        curl_easy_setopt(c->easy, CURLOPT_TIMEOUT, 600L);
        curl_easy_setopt(c->easy, CURLOPT_LOW_SPEED_LIMIT, 0L);
    }
    r = curl_easy_perform(c->easy);
    if (c->status == 0)
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->status);
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->hdrs);
    if (extra) {
        extra->next = NULL;
        curl_slist_free_all(extra);
    }
    return r;
}

static void report_curl(struct cli *c, CURLcode r)
{
    fprintf(stderr, "sluice: cannot reach %s: %s\n", c->base,
            c->errbuf[0] ? c->errbuf : curl_easy_strerror(r));
    if (r == CURLE_PEER_FAILED_VERIFICATION
#if LIBCURL_VERSION_NUM < 0x073e00
        || r == CURLE_SSL_CACERT
#endif
    )
        fprintf(stderr, "sluice: for a server with a private CA or a self-signed certificate "
                        "set SLUICE_CA_FILE or pass --cacert FILE\n");
}

/* A non-200 answer: the message, and the exit status. */
static int report_status(struct cli *c)
{
    char msg[1024];
    const char *m = sl_client_errmsg(c->body.p ? c->body.p : "", c->body.len, msg, sizeof(msg));

    if (c->status == 401) {
        fprintf(stderr, "sluice: the token was refused (SLUICE_TOKEN)\n");
        return 1;
    }
    if (c->status == 400) {
        fprintf(stderr, "sluice: %s\n", m ? m : "the server refused the request (400)");
        return 2;
    }
    if (c->status == 404)
        fprintf(stderr, "sluice: %s has no search API (404): is it a sluice server?\n", c->base);
    else
        fprintf(stderr, "sluice: the server answered %ld%s%s\n", c->status, m ? ": " : "",
                m ? m : "");
    return 1;
}

static int cli_url(struct cli *c, const char *path, struct sl_buf *url)
{
    sl_buf_reset(url);
    if (sl_buf_add(url, c->base, strlen(c->base)) || sl_buf_add(url, path, strlen(path)))
        return SL_ENOMEM;
    if (c->o->query[0] && sl_client_url_param(url, "q", c->o->query))
        return SL_ENOMEM;
    for (size_t i = 0; i < c->o->nsources; i++)
        if (sl_client_url_param(url, "source", c->o->sources[i]))
            return SL_ENOMEM;
    return 0;
}

/* The EVENT's plain line or its JSON text (plus "\n") appended to c->out. */
static int render(struct cli *c, const cJSON *ev, const char *raw, size_t raw_len)
{
    if (c->o->json) {
        char *s;
        int rc;

        /* The server's own text (raw), unless it spans lines: NDJSON is one a line. */
        if (raw && (memchr(raw, '\n', raw_len) || memchr(raw, '\r', raw_len)))
            raw = NULL;
        s = raw ? NULL : cJSON_PrintUnformatted(ev);
        if (raw == NULL && s == NULL)
            return SL_ENOMEM;
        rc = sl_buf_add(&c->out, raw ? raw : s, raw ? raw_len : strlen(s));
        free(s);
        return rc ? rc : sl_buf_addc(&c->out, '\n');
    }
    struct sl_client_line l = {
        json_str(ev, "received_at"), json_str(ev, "hostname"), json_str(ev, "app_name"),
        json_str(ev, "procid"),      json_str(ev, "message"),
    };
    return sl_client_format(&l, c->color, c->local, &c->out);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void note_id(struct cli *c, const char *id, size_t len)
{
    uint64_t v;

    if (sl_client_id_parse(id, len, &v) != 0)
        return;
    if (c->nprinted == c->capprinted) {
        size_t nc = c->capprinted * 2 + 256;
        uint64_t *t = realloc(c->printed, nc * sizeof(*t));
        if (t != NULL) {
            c->printed = t;
            c->capprinted = nc;
        }
    }
    if (c->nprinted < c->capprinted)
        c->printed[c->nprinted++] = v;
    if ((c->last_id[0] == '\0' || v > c->last_num) && len < sizeof(c->last_id)) {
        c->last_num = v;
        memcpy(c->last_id, id, len);
        c->last_id[len] = '\0';
    }
}

/* The newest `limit` matching lines, printed oldest first. Returns an exit status. */
static int cli_search(struct cli *c, long limit)
{
    struct sl_buf url;
    char *since = dup_or_null(c->o->since), *until = dup_or_null(c->o->until);
    char *cursor = NULL;
    size_t *ends = NULL, nlines = 0, capl = 0;
    struct sl_str *raw = NULL; /* --json: the events' own text in c->body */
    long remaining = limit, nev, k;
    cJSON *ans = NULL;
    int rc = 1;

    sl_buf_init(&url, 64 * 1024);
    sl_buf_reset(&c->out);
    c->stream = false;
    while (remaining > 0) {
        long page = remaining > SL_CLIENT_PAGE ? SL_CLIENT_PAGE : remaining;
        const cJSON *events, *ev, *end;
        const char *next;
        char num[24];
        CURLcode r;

        snprintf(num, sizeof(num), "%ld", page);
        if (cli_url(c, "/api/v1/search", &url) || sl_client_url_param(&url, "order", "desc") ||
            sl_client_url_param(&url, "limit", num) ||
            (since && sl_client_url_param(&url, "since", since)) ||
            (until && sl_client_url_param(&url, "until", until)) ||
            (cursor && sl_client_url_param(&url, "cursor", cursor)) || sl_buf_addc(&url, '\0'))
            goto nomem;
        /* a page's answer is at most what `page` events may take */
        sl_buf_free(&c->body);
        sl_buf_init(&c->body, sl_client_answer_max(page));
        r = cli_get(c, url.p, NULL);
        if (interrupted)
            goto out;
        if (r != CURLE_OK && c->body_toobig) {
            fprintf(stderr,
                    "sluice: the server's answer passed %zu bytes, more than %ld events take "
                    "at the default SLUICE_MAX_MESSAGE_BYTES and SLUICE_SEARCH_ANSWER_BYTES: "
                    "stopped\n",
                    c->body.max, page);
            goto out;
        }
        if (r != CURLE_OK) {
            report_curl(c, r);
            goto out;
        }
        if (c->status != 200) {
            rc = report_status(c);
            goto out;
        }
        cJSON_Delete(ans);
        ans = cJSON_ParseWithLength(c->body.p ? c->body.p : "", c->body.len);
        events = cJSON_GetObjectItemCaseSensitive(ans, "events");
        if (!cJSON_IsArray(events)) {
            fprintf(stderr, "sluice: the server's answer has no events array\n");
            goto out;
        }
        nev = cJSON_GetArraySize(events);
        free(raw);
        raw = NULL;
        if (c->o->json && nev > 0) {
            if ((raw = calloc((size_t)nev, sizeof(*raw))) == NULL)
                goto nomem;
            if (sl_client_json_events(c->body.p, c->body.len, raw, (size_t)nev) != nev) {
                free(raw); /* cannot slice it: print cJSON's rendering instead */
                raw = NULL;
            }
        }
        k = 0;
        cJSON_ArrayForEach(ev, events)
        {
            const char *id = json_str(ev, "id");
            if (nlines == capl) {
                size_t *t = realloc(ends, (capl = capl * 2 + 256) * sizeof(*ends));
                if (t == NULL)
                    goto nomem;
                ends = t;
            }
            int rrc = render(c, ev, raw ? raw[k].p : NULL, raw ? raw[k].len : 0);
            if (rrc == SL_ETOOBIG) {
                fprintf(stderr,
                        "sluice: the lines passed %zu bytes, more than %ld events take at the "
                        "default SLUICE_MAX_MESSAGE_BYTES: stopped\n",
                        c->out.max, limit);
                goto out;
            }
            if (rrc)
                goto nomem;
            k++;
            ends[nlines++] = c->out.len;
            if (id)
                note_id(c, id, strlen(id));
            remaining--;
        }
        next = json_str(ans, "next_cursor");
        end = cJSON_GetObjectItemCaseSensitive(ans, "reached_end");
        if (cJSON_IsTrue(end) || next == NULL || cJSON_GetArraySize(events) == 0)
            break;
        free(cursor);
        cursor = strdup(next);
        /* Later pages must see the window of the first one (a default or relative one
         * would move with "now"). */
        if (since == NULL && json_str(ans, "since"))
            since = strdup(json_str(ans, "since"));
        if (until == NULL && json_str(ans, "until"))
            until = strdup(json_str(ans, "until"));
        if (cursor == NULL)
            goto nomem;
    }
    /* Oldest first: the lines were gathered newest first. */
    for (size_t i = nlines; i-- > 0;) {
        size_t start = i ? ends[i - 1] : 0;
        if (fwrite(c->out.p + start, 1, ends[i] - start, stdout) != ends[i] - start)
            break;
    }
    rc = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
    if (rc)
        fprintf(stderr, "sluice: cannot write the output: %s\n", strerror(errno));
    goto out;
nomem:
    fprintf(stderr, "sluice: out of memory (try a smaller --limit)\n");
out:
    cJSON_Delete(ans);
    free(raw);
    free(ends);
    free(cursor);
    free(since);
    free(until);
    sl_buf_free(&url);
    return rc;
}

static int on_event(const struct sl_sse_event *ev, void *arg)
{
    struct cli *c = arg;
    char notice[512];
    uint64_t v;
    cJSON *j;
    int rc;

    c->got_event = true;
    if (ev->type_len == 6 && !memcmp(ev->type, "missed", 6)) {
        if (sl_client_missed_notice(ev->data, ev->data_len, notice, sizeof(notice)))
            fprintf(stderr, "%s\n", notice);
        else
            fprintf(stderr, "sluice: the server skipped lines: %s\n", ev->data);
        return 0;
    }
    if (!(ev->type_len == 7 && !memcmp(ev->type, "message", 7)))
        return 0; /* an event type this client does not know */
    j = cJSON_ParseWithLength(ev->data, ev->data_len);
    if (j == NULL)
        return 0;
    /* The SSE id: field is the line's id; the EVENT's own id if a stream lacks it. */
    if (!ev->id_here || sl_client_id_parse(ev->id, ev->id_len, &v) != 0) {
        const char *id = json_str(j, "id");
        if (id == NULL || sl_client_id_parse(id, strlen(id), &v)) {
            cJSON_Delete(j);
            return 0;
        }
    }
    if (c->nprinted && bsearch(&v, c->printed, c->nprinted, sizeof(v), cmp_u64)) {
        cJSON_Delete(j); /* printed already with the first lines */
        return 0;
    }
    sl_buf_reset(&c->out);
    rc = render(c, j, ev->data, ev->data_len);
    cJSON_Delete(j);
    if (rc == SL_ETOOBIG) {
        /* said and skipped: failing the stream would only resume at the same line */
        fprintf(stderr,
                "sluice: line %llu passed %zu bytes, more than an event takes at the default "
                "SLUICE_MAX_MESSAGE_BYTES: skipped\n",
                (unsigned long long)v, c->out.max);
        sl_buf_reset(&c->out);
    } else if (rc) {
        return rc;
    } else if (fwrite(c->out.p, 1, c->out.len, stdout) != c->out.len || fflush(stdout) != 0) {
        c->write_failed = errno ? errno : EIO;
        return SL_EIO;
    }
    c->last_num = v;
    snprintf(c->last_id, sizeof(c->last_id), "%llu", (unsigned long long)v);
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (!interrupted && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* tail -f after the first lines: follow the stream for ever. Returns an exit status. */
static int cli_follow(struct cli *c)
{
    struct sl_buf url;
    long failures = 0;
    int rc = 1;

    sl_buf_init(&url, 64 * 1024);
    if (cli_url(c, "/api/v1/tail", &url) || sl_buf_addc(&url, '\0')) {
        fprintf(stderr, "sluice: out of memory\n");
        goto out;
    }
    sl_sse_init(&c->sse, SSE_MAX);
    c->stream = true;
    while (!interrupted) {
        long base, wait;
        CURLcode r;

        sl_sse_reset(&c->sse);
        c->got_event = false;
        r = cli_get(c, url.p, c->last_id);
        if (interrupted)
            break;
        if (c->write_failed) {
            fprintf(stderr, "sluice: cannot write the output: %s\n", strerror(c->write_failed));
            goto out;
        }
        if (r == CURLE_OK && c->status != 200 && c->status < 500 && c->status != 408 &&
            c->status != 429) {
            rc = report_status(c);
            goto out;
        }
        if (c->status == 200 || c->got_event)
            failures = 0; /* it worked for a while: start again from the short wait */
        base = c->sse.retry_ms >= 100 && c->sse.retry_ms <= 60000 ? c->sse.retry_ms : 2000;
        wait = base;
        for (long k = 0; k < failures && wait < BACKOFF_MAX_MS; k++)
            wait *= 2;
        if (wait > BACKOFF_MAX_MS)
            wait = BACKOFF_MAX_MS;
        failures++;
        if (r != CURLE_OK)
            fprintf(stderr, "sluice: tail stream lost (%s); reconnecting in %.1f s\n",
                    c->errbuf[0] ? c->errbuf : curl_easy_strerror(r), (double)wait / 1000);
        else if (c->status != 200)
            fprintf(stderr, "sluice: the server answered %ld; reconnecting in %.1f s\n", c->status,
                    (double)wait / 1000);
        else
            fprintf(stderr, "sluice: tail stream ended; reconnecting in %.1f s\n",
                    (double)wait / 1000);
        sleep_ms(wait);
    }
    rc = 0; /* Ctrl-C */
out:
    sl_sse_free(&c->sse);
    sl_buf_free(&url);
    return rc;
}

static void client_usage(enum sl_client_cmd cmd, FILE *f)
{
    if (cmd == SL_CLIENT_SEARCH)
        fprintf(f, "usage: sluice search [QUERY] [--source S]... [--since T] [--until T] "
                   "[--limit N] [--json] [--color|--no-color]\n");
    else
        fprintf(f, "usage: sluice tail [QUERY] [-f] [--source S]... [-n N] [--json] "
                   "[--color|--no-color]\n");
    fprintf(f,
            "  common: [--url URL] [--token TOKEN] [--cacert FILE] [--insecure]\n"
            "  The server and token come from SLUICE_URL / SLUICE_TOKEN (SLUICE_CA_FILE for\n"
            "  a private CA) or ~/.config/sluice/cli.conf (url = ..., token = ...).\n"
            "  papertrail-cli spellings work too: -s / --system NAME for --source, -j for --json.\n"
            "  Times are shown in UTC; set TZ for another zone. Query language: docs/query.md.\n");
}

int sl_client_main(enum sl_client_cmd cmd, int argc, char **argv)
{
    struct sl_client_opts o;
    struct cli c;
    char err[256];
    const char *tz = getenv("TZ"), *nc = getenv("NO_COLOR"), *term = getenv("TERM");
    int rc;

    if (sl_client_args(cmd, argc, argv, &o, err, sizeof(err))) {
        fprintf(stderr, "sluice: %s\n", err);
        client_usage(cmd, stderr);
        return 2;
    }
    if (o.help) {
        client_usage(cmd, stdout);
        return 0;
    }
    memset(&c, 0, sizeof(c));
    c.o = &o;
    sl_buf_init(&c.body, ERRBODY_MAX); /* cli_search sizes it for each page */
    /* search holds every line until it can print them oldest first: --limit of them
     * (tail -f reuses it for one line at a time) */
    sl_buf_init(&c.out, sl_client_lines_max(o.limit > 0 ? o.limit : 1));
    if (o.color == SL_CLIENT_COLOR_AUTO)
        c.color =
            !o.json && isatty(STDOUT_FILENO) && !(nc && *nc) && !(term && !strcmp(term, "dumb"));
    else
        c.color = !o.json && o.color == SL_CLIENT_COLOR_ALWAYS;
    c.local = tz && *tz;
    if ((rc = cli_settings(&c)) || (rc = cli_curl(&c)))
        goto out;
    if (cmd == SL_CLIENT_TAIL && o.follow) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal; /* no SA_RESTART: a sleep ends at once */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    rc = o.limit > 0 ? cli_search(&c, o.limit) : 0;
    if (c.nprinted)
        qsort(c.printed, c.nprinted, sizeof(*c.printed), cmp_u64);
    if (rc == 0 && cmd == SL_CLIENT_TAIL && o.follow && !interrupted)
        rc = cli_follow(&c);
    if (interrupted && cmd == SL_CLIENT_TAIL && o.follow)
        rc = 0;
out:
    if (c.easy)
        curl_easy_cleanup(c.easy);
    curl_slist_free_all(c.hdrs);
    if (c.easy)
        curl_global_cleanup();
    if (c.token)
        memset(c.token, 0, strlen(c.token));
    free(c.token);
    free(c.base);
    free(c.cacert);
    sl_buf_free(&c.body);
    sl_buf_free(&c.out);
    free(c.printed);
    return rc;
}
