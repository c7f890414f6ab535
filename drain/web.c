/* The web viewer's embedded files (include/sluice/web.h): look-up by path, content type,
 * ETag comparison. The bytes and ETags are generated from drain/web/ by the Makefile
 * ($(BUILD)/gen/web_assets.c). Pure: no I/O, no state. */
#include <string.h>

#include "sluice/web.h"

const struct sl_web_file *sl_web_find(struct sl_str path)
{
    if (sl_str_eq(path, "/"))
        path = (struct sl_str){"/index.html", 11};
    for (const struct sl_web_file *f = sl_web_files; f->path; f++)
        if (sl_str_eq(path, f->path))
            return f;
    return NULL;
}

bool sl_web_path(struct sl_str path)
{
    return sl_web_find(path) != NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

const char *sl_web_ctype(const struct sl_web_file *f)
{
    if (ends_with(f->path, ".html"))
        return "text/html; charset=utf-8";
    if (ends_with(f->path, ".js"))
        return "text/javascript; charset=utf-8";
    if (ends_with(f->path, ".css"))
        return "text/css; charset=utf-8";
    if (ends_with(f->path, ".svg"))
        return "image/svg+xml";
    return "application/octet-stream";
}

bool sl_web_etag_match(struct sl_str inm, const char *etag)
{
    size_t n = strlen(etag), i = 0;

    /* a comma-separated list of entity tags, each maybe W/ (weak comparison, RFC 9110
     * §13.1.2), or "*" */
    while (i < inm.len) {
        size_t j = i;
        while (j < inm.len && inm.p[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && (inm.p[a] == ' ' || inm.p[a] == '\t'))
            a++;
        while (b > a && (inm.p[b - 1] == ' ' || inm.p[b - 1] == '\t'))
            b--;
        if (b - a == 1 && inm.p[a] == '*')
            return true;
        if (b - a >= 2 && inm.p[a] == 'W' && inm.p[a + 1] == '/')
            a += 2;
        if (b - a == n + 2 && inm.p[a] == '"' && inm.p[b - 1] == '"' &&
            memcmp(inm.p + a + 1, etag, n) == 0)
            return true;
        i = j + 1;
    }
    return false;
}
