/* libFuzzer target for drain/fields.c (the JSON line scanner, lookups, canonical
 * numbers, logfmt lookup, field conditions).
 *
 *   make fuzz     (builds build-fuzz/fuzz_fields with FUZZ_SRC_fields, seeds in
 *                 tests/fuzz/seeds/fields)
 *
 * Besides memory errors (the line is an exact-size heap copy, so a read past len is an
 * ASan report) it checks the contract: a found object is valid on its own and starts at
 * a '{' whose character offset counts the UTF-8 lead bytes before it; what a lookup of a
 * walked path finds lies inside the object (a later duplicate may replace a parent: the
 * last wins, so it need not find the walked leaf); the extra
 * filter words stay within their bound; a canonical number is a JSON number and its own
 * canonical form; conditions never crash on any line; the numeric field classes stay
 * within one per '=' and per leaf. The first input byte picks a condition; the rest is
 * the line. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/fields.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

struct ctx {
    const char *obj;
    size_t len;
    size_t leaves;
    struct sl_fields_line *fl; /* the line, for the index against the walking lookup */
};

static int on_leaf(void *arg, const char *path, size_t plen, const struct sl_jleaf *leaf)
{
    struct ctx *c = arg;
    struct sl_jleaf again;
    char canon[SL_FIELDS_CANON_MAX + 2];

    c->leaves++;
    CHECK(strlen(path) == plen);
    CHECK(leaf->raw.p >= c->obj && leaf->raw.p + leaf->raw.len <= c->obj + c->len);
    CHECK(leaf->type != SL_J_OBJECT && leaf->type != SL_J_ARRAY);
    /* found again unless a later duplicate replaced a parent (the last wins); whatever is
     * found lies inside the object. Bounded work per input. */
    if (plen > 0 && c->leaves < 256 && sl_fields_json_get(c->obj, c->len, path, plen, &again)) {
        struct sl_str v;
        enum sl_jtype t;
        CHECK(again.raw.p >= c->obj && again.raw.p + again.raw.len <= c->obj + c->len);
        /* the line's index answers as the walking lookup does */
        CHECK(sl_fields_line_get(c->fl, path, &v, &t));
        CHECK(t == again.type && v.p == again.raw.p && v.len == again.raw.len);
    }
    if (leaf->type == SL_J_NUMBER) {
        size_t k = sl_fields_num_canon(leaf->raw.p, leaf->raw.len, canon, sizeof(canon));
        char again_c[SL_FIELDS_CANON_MAX + 2];
        CHECK(sl_fields_is_number(leaf->raw.p, leaf->raw.len));
        if (k > 0) {
            CHECK(sl_fields_is_number(canon, k));
            CHECK(sl_fields_num_canon(canon, k, again_c, sizeof(again_c)) == k);
            CHECK(memcmp(again_c, canon, k) == 0);
        }
    }
    return 0;
}

static void count_hash(void *arg, uint64_t hash)
{
    (void)hash;
    (*(size_t *)arg)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const exprs[] = {"error", ">1000", "!=x", "web.*", "=42", "<=0.5", "true",
                                        "null"};
    static const char *const keys[] = {"level", "a.b", "user.id", "x", "tags.0", "a.b.c"};
    struct sl_json_at at;
    struct sl_field_cond cond;
    struct sl_fields_line *fl;
    struct sl_buf extra;
    const char *why;
    char *line;
    unsigned pick;

    if (size == 0)
        return 0;
    pick = data[0];
    line = malloc(size - 1 ? size - 1 : 1);
    if (line == NULL)
        return 0;
    memcpy(line, data + 1, size - 1);
    size--;
    if (sl_fields_json_find(line, size, &at)) {
        size_t chars = 0;
        struct sl_fields_line *lfl = malloc(sizeof(*lfl));
        struct ctx c = {line + at.off, size - at.off, 0, lfl};
        if (lfl == NULL) {
            free(line);
            return 0;
        }
        sl_fields_line_init(lfl, line, size);
        CHECK(at.off < size && line[at.off] == '{');
        for (size_t i = 0; i < at.off; i++)
            chars += ((unsigned char)line[i] & 0xC0) != 0x80;
        CHECK(chars == at.char_off);
        CHECK(sl_fields_json_valid(c.obj, c.len));
        CHECK(sl_fields_json_walk(c.obj, c.len, on_leaf, &c) == 0);
        sl_buf_init(&extra, (SL_FIELDS_CANON_MAX + 2) * SL_JSON_MAX_BYTES);
        CHECK(sl_fields_json_extra(c.obj, c.len, &extra) == 0);
        CHECK(extra.len <= (SL_FIELDS_CANON_MAX + 2) * c.len);
        if (!at.escapes && !at.odd_numbers)
            CHECK(extra.len == 0);
        sl_buf_free(&extra);
        free(lfl);
    } else if (size > 0 && line[0] == '{') {
        CHECK(!sl_fields_json_valid(line, size)); /* a valid object at 0 is always found */
    }
    {
        /* the numeric field classes of the line, with its object when it has one: bounded
         * (at most one class per '=' of the line and per leaf of the object) */
        size_t eqs = 0, n = 0, json_off = SIZE_MAX;
        struct sl_json_at at2;
        for (size_t i = 0; i < size; i++) {
            eqs += line[i] == '=';
            n += line[i] == ',' || line[i] == ':'; /* leaves are at most these + 1 */
        }
        if (sl_fields_json_find(line, size, &at2))
            json_off = at2.off;
        size_t got = 0;
        CHECK(sl_fields_num_classes(line, size, json_off, count_hash, &got) == 0);
        CHECK(got <= eqs + n + 1);
    }
    {
        char num[SL_FIELDS_CANON_MAX + 2];
        size_t k = sl_fields_num_canon(line, size, num, sizeof(num));
        if (k > 0)
            CHECK(sl_fields_is_number(line, size) && sl_fields_is_number(num, k));
    }
    if (sl_fields_cond_parse(keys[pick % 6], exprs[(pick >> 3) % 8], &cond, &why) == 0) {
        if ((fl = malloc(sizeof(*fl))) != NULL) {
            sl_fields_line_init(fl, line, size);
            (void)sl_fields_cond_eval(&cond, fl);
            free(fl);
        }
    }
    free(line);
    return 0;
}
