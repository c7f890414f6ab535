"""An independent model of the search query language (include/sluice/query.h), for e2e
expected result sets: parse a query and evaluate it over rows fetched from PostgreSQL
(`SELECT l.*, s.name AS source FROM logs l JOIN sources s ...`).

Written from the header's contract, not from drain/query.c's SQL:
  - words and phrases match whole tokens (tokens.h: runs of ASCII letters, digits, '_'
    and bytes >= 0x80), ASCII case-insensitively, anywhere in the message;
  - app/program/host: the column equals the value, or matches it as a glob (* ?);
  - severity/facility: a name or a number, compared as numbers (=, <, <=, >, >=, !=);
  - key:value: a logfmt field of the message (key=value or key="value") equal to the
    value (glob allowed); key:OPnumber compares the field's value as a number, with time
    (us ms s; bare = ms) and byte (b bytes kb mb gb, 1024-based; bare = bytes) units;
  - a field is also a leaf of the line's JSON object (include/sluice/fields.h: the first
    of 4 '{' from which a valid object runs to the end of the line, depth <= 32, numbers
    <= 64 bytes with |exponent| <= 24, no \u0000 or lone surrogate, <= 256 KiB; the last
    duplicate key wins; a dotted path, else the whole key at the top level): a string
    equals as text, a number as a number when the value is one, true/false/null as
    themselves; a glob matches the leaf's text; <, >... take numbers and strings holding
    one; the field matches when the logfmt field OR the JSON leaf does;
  - a negated attribute keeps lines without that attribute (SQL "IS NOT TRUE").
Three-valued: a leaf on a missing attribute is None (unknown) and the row matches only
when the whole query is True.
"""

import decimal
import json
import re

SEVERITIES = {
    "emerg": 0, "emergency": 0, "panic": 0, "alert": 1, "crit": 2, "critical": 2, "err": 3,
    "error": 3, "warning": 4, "warn": 4, "notice": 5, "info": 6, "informational": 6,
    "debug": 7,
}
FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13,
    "console": 14, "solaris-cron": 15, **{f"local{i}": 16 + i for i in range(8)},
}
TIME_UNITS = {"us": decimal.Decimal("0.001"), "ms": decimal.Decimal(1), "s": decimal.Decimal(1000)}
BYTE_UNITS = {"b": 1, "bytes": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3}
NUM = r"-?[0-9]{1,20}(?:\.[0-9]{1,20})?"
WS = " \t\r\n"


class QueryError(Exception):
    pass


def is_tok(b):
    return b >= 0x80 or b == 0x5F or 0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A


def ascii_lower(bs):
    return bytes(b + 32 if 0x41 <= b <= 0x5A else b for b in bs)


def word_match(message, needle):
    """needle (str) occurs in message at token boundaries, ASCII case-insensitively."""
    h, n = ascii_lower(message.encode()), ascii_lower(needle.encode())
    i = h.find(n)
    while i >= 0:
        end = i + len(n)
        ok_start = not is_tok(n[0]) or i == 0 or not is_tok(h[i - 1])
        ok_end = not is_tok(n[-1]) or end == len(h) or not is_tok(h[end])
        if ok_start and ok_end:
            return True
        i = h.find(n, i + 1)
    return False


def glob_re(value, any_char="."):
    out = []
    for c in value:
        out.append(f"{any_char}*" if c == "*" else any_char if c == "?" else re.escape(c))
    return re.compile("".join(out) + r"\Z", re.S)


def logfmt_values(message, key):
    """The occurrences of key=... in message (key at the start or after a byte <= ' '),
    each as the list of its readings (value, quoted): the unquoted run up to the next
    separator, and for key="..." also the unescaped quoted value."""
    pos, needle, out = 0, key + "=", []
    while True:
        i = message.find(needle, pos)
        if i < 0:
            return out
        pos = i + 1
        if i > 0 and ord(message[i - 1]) > 0x20:
            continue
        j = i + len(needle)
        readings = []
        if j < len(message) and message[j] == '"':
            k, val, closed = j + 1, [], False
            while k < len(message):
                c = message[k]
                if c == "\\" and k + 1 < len(message):
                    val.append(message[k + 1])
                    k += 2
                    continue
                if c == '"':
                    closed = True
                    break
                val.append(c)
                k += 1
            if closed and (k + 1 == len(message) or ord(message[k + 1]) <= 0x20):
                readings.append(("".join(val), True))
        k = j
        while k < len(message) and ord(message[k]) > 0x20:
            k += 1
        readings.append((message[j:k], False))
        out.append(readings)


def numeric_field(message, key, dim):
    """The number of the first ` key=` field (key at the start or after a space), in ms
    (time), bytes (bytes) or as written (dim None); None when absent or not a number."""
    s = " " + message
    i = s.find(" " + key + "=")
    if i < 0:
        return None
    v = s[i + len(key) + 2:].split(" ", 1)[0]
    m = re.fullmatch(r'"?(' + NUM + r')([A-Za-z]*)"?', v)
    if not m:
        return None
    num, unit = decimal.Decimal(m.group(1)), m.group(2).lower()
    if dim is None:
        return num if unit == "" else None
    table = TIME_UNITS if dim == "time" else BYTE_UNITS
    if unit == "":
        return num
    if unit not in table:
        return None
    return num * table[unit]


# ---------------------------------------------------------------- JSON lines

JSON_MAX_BYTES, JSON_MAX_DEPTH, JSON_MAX_NUMBER, JSON_MAX_EXP = 256 * 1024, 32, 64, 24
JSON_NUM = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?([0-9]+))?\Z")


class _Bad(Exception):
    pass


def _json_num(text):
    m = JSON_NUM.match(text)
    if not m or len(text) > JSON_MAX_NUMBER or (m.group(1) and int(m.group(1)) > JSON_MAX_EXP):
        raise _Bad(text)
    return decimal.Decimal(text)


def _check_str(v):
    if "\x00" in v or any(0xD800 <= ord(c) <= 0xDFFF for c in v):
        raise _Bad("string")
    return v


def _depth_ok(v, d=1):
    if isinstance(v, (dict, list)):
        if d > JSON_MAX_DEPTH:
            return False
        return all(_depth_ok(x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return True


def _pairs(pairs):
    for k, _ in pairs:
        _check_str(k)
    return dict(pairs)  # the last duplicate wins


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_float=_json_num, parse_int=_json_num,
                            parse_constant=lambda c: (_ for _ in ()).throw(_Bad(c)), strict=True)


def json_object(message):
    """The line's JSON object (a dict) or None."""
    pos = 0
    for _ in range(4):
        i = message.find("{", pos)
        if i < 0:
            return None
        pos = i + 1
        rest = message[i:]
        if len(rest.encode()) > JSON_MAX_BYTES:
            continue
        try:
            obj, end = _DECODER.raw_decode(rest)
        except (ValueError, _Bad, RecursionError):
            continue
        if rest[end:].strip(" \t\r\n") != "" or not _depth_ok(obj) or not _strings_ok(obj):
            continue
        return obj
    return None


def _strings_ok(v):
    try:
        if isinstance(v, str):
            _check_str(v)
        elif isinstance(v, dict):
            return all(_strings_ok(x) for x in v.values())
        elif isinstance(v, list):
            return all(_strings_ok(x) for x in v)
        return True
    except _Bad:
        return False
    return True


_MISSING = object()


def json_leaf(obj, key):
    """The value at the dotted path (arrays by index), else at the whole key at the top
    level; _MISSING when neither."""
    v = obj
    for seg in key.split("."):
        if isinstance(v, dict) and seg in v:
            v = v[seg]
        elif isinstance(v, list) and re.fullmatch(r"-?[0-9]+", seg) and -len(v) <= int(seg) < len(v):
            v = v[int(seg)]
        else:
            v = _MISSING
            break
    if v is _MISSING and "." in key and key in obj:
        v = obj[key]
    return v


def _leaf_text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    return v  # str; None for null


def json_field(message, key, op, val):
    """key:val / key:!=val on the JSON leaf: True or False (never unknown)."""
    obj = json_object(message)
    if obj is None:
        return False
    v = json_leaf(obj, key)
    if v is _MISSING or isinstance(v, (dict, list)):
        return False
    if "*" in val or "?" in val:
        t = _leaf_text(v)
        if t is None:
            return False
        hit = glob_re(val).match(t) is not None
    elif v is None:
        hit = val == "null"
    elif isinstance(v, bool):
        hit = val == ("true" if v else "false")
    elif isinstance(v, decimal.Decimal):
        try:
            hit = _json_num(val) == v
        except _Bad:
            hit = False
    else:
        hit = v == val
    return hit if op == "=" else not hit


def json_number(message, key, dim):
    """The JSON leaf as a number for <, >...: a number counts in the dimension's base unit,
    a string is read like a logfmt value; None otherwise."""
    obj = json_object(message)
    if obj is None:
        return None
    v = json_leaf(obj, key)
    if isinstance(v, decimal.Decimal):
        return v
    if isinstance(v, str) and not isinstance(v, bool):
        return numeric_field(key + "=" + v.replace(" ", "\x00"), key, dim)
    return None


CMP = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


# ---------------------------------------------------------------- parser


class Parser:
    def __init__(self, text):
        self.s, self.i = text, 0

    def at_delim(self, i):
        return i >= len(self.s) or self.s[i] in WS or self.s[i] in "()"

    def skip_ws(self):
        while self.i < len(self.s) and self.s[self.i] in WS:
            self.i += 1

    def keyword(self, kw):
        return self.s.startswith(kw, self.i) and self.at_delim(self.i + len(kw))

    def parse(self):
        self.skip_ws()
        if self.i >= len(self.s):
            return ("all",)
        node = self.parse_or()
        self.skip_ws()
        if self.i < len(self.s):
            raise QueryError(f"trailing text at {self.i}")
        return node

    def parse_or(self):
        kids = [self.parse_and()]
        while self.keyword("OR"):
            self.i += 2
            kids.append(self.parse_and())
        return kids[0] if len(kids) == 1 else ("or", kids)

    def parse_and(self):
        kids = []
        while True:
            self.skip_ws()
            if self.i >= len(self.s) or self.s[self.i] == ")" or self.keyword("OR"):
                break
            if self.keyword("AND"):
                if not kids:
                    raise QueryError("AND first")
                self.i += 3
                continue
            kids.append(self.parse_unary())
        if not kids:
            raise QueryError(f"empty at {self.i}")
        return kids[0] if len(kids) == 1 else ("and", kids)

    def parse_unary(self):
        if self.s[self.i] == "-":
            if self.at_delim(self.i + 1) and not self.s.startswith("-(", self.i):
                raise QueryError("nothing to negate")
            self.i += 1
            return ("not", self.parse_unary())
        if self.keyword("NOT"):
            self.i += 3
            self.skip_ws()
            return ("not", self.parse_unary())
        return self.parse_primary()

    def quoted(self):
        q, i, out = self.s[self.i], self.i + 1, []
        while i < len(self.s) and self.s[i] != q:
            if self.s[i] == "\\" and i + 1 < len(self.s) and self.s[i + 1] in (q, "\\"):
                i += 1
            out.append(self.s[i])
            i += 1
        if i >= len(self.s):
            raise QueryError("unterminated quote")
        self.i = i + 1
        return "".join(out)

    def parse_primary(self):
        c = self.s[self.i]
        if c == "(":
            self.i += 1
            node = self.parse_or()
            if self.i >= len(self.s) or self.s[self.i] != ")":
                raise QueryError("unbalanced parenthesis")
            self.i += 1
            return node
        if c in "\"'":
            return ("word", self.quoted())
        if c == "/":
            j = self.i + 1
            while j < len(self.s) and self.s[j] != "/":
                j += 2 if self.s[j] == "\\" else 1
            if j < len(self.s):
                icase = self.s[j + 1:j + 2] == "i"
                if self.at_delim(j + 1 + icase):
                    body = self.s[self.i + 1:j].replace("\\/", "/")
                    self.i = j + 1 + icase
                    return ("regex", re.compile(body, re.I if icase else 0))
        else:
            m = re.match(r"[A-Za-z_][A-Za-z0-9_.#-]{0,63}:", self.s[self.i:])
            if m:
                node = self.attr(m.group(0)[:-1])
                if node is not None:
                    return node
        j = self.i
        while not self.at_delim(j):
            j += 1
        word, self.i = self.s[self.i:j], j
        return ("word", word)

    def attr(self, key):
        start = self.i
        self.i += len(key) + 1
        op, has_op = "=", False
        for o in (">=", "<=", "!=", ">", "<", "="):
            if self.s.startswith(o, self.i):
                op, has_op = o, True
                self.i += len(o)
                break
        if self.i < len(self.s) and self.s[self.i] in "\"'":
            val, quoted = self.quoted(), True
        else:
            j = self.i
            while not self.at_delim(j):
                j += 1
            val, quoted, self.i = self.s[self.i:j], False, j
        if not quoted and val == "" and not has_op and key not in (
                "source", "app", "program", "proc", "host", "sender", "severity",
                "facility", "message"):
            self.i = start
            return None  # "KeyError:" is a word
        if key == "source":
            return ("source", op, val)
        if key == "app":
            return ("col", "app_name", op, val)
        if key in ("program", "proc"):
            return ("col", "procid", op, val)
        if key in ("host", "sender"):
            return ("col", "hostname", op, val)
        if key in ("severity", "facility"):
            table = SEVERITIES if key == "severity" else FACILITIES
            if re.fullmatch(r"[0-9]{1,2}", val):
                num = int(val)
            elif val.lower() in table:
                num = table[val.lower()]
            else:
                raise QueryError(f"unknown {key}")
            return ("num", key, op, num)
        if key == "message":
            return ("word", val)
        if op not in ("=", "!=") or (has_op and re.match(r"-?[0-9]", val)):
            m = re.fullmatch(r"(" + NUM + r")([A-Za-z]*)", val)
            if not m:
                raise QueryError("expected a number")
            unit = m.group(2).lower()
            num = decimal.Decimal(m.group(1))
            if unit == "":
                return ("field_num", key, op, num, None)
            if unit in TIME_UNITS:
                return ("field_num", key, op, num * TIME_UNITS[unit], "time")
            if unit in BYTE_UNITS:
                return ("field_num", key, op, num * BYTE_UNITS[unit], "bytes")
            raise QueryError("unknown unit")
        return ("field", key, op, val)


def parse(text):
    return Parser(text).parse()


# ---------------------------------------------------------------- evaluation


def _and(vals):
    vals = list(vals)
    if any(v is False for v in vals):
        return False
    return None if any(v is None for v in vals) else True


def _or(vals):
    vals = list(vals)
    if any(v is True for v in vals):
        return True
    return None if any(v is None for v in vals) else False


def evaluate(node, row, source_ids):
    """True / False / None (unknown) for one row. source_ids(name_or_glob) -> set of the
    source ids the name resolves to within the token's scope."""
    kind = node[0]
    if kind == "all":
        return True
    if kind == "and":
        return _and(evaluate(k, row, source_ids) for k in node[1])
    if kind == "or":
        return _or(evaluate(k, row, source_ids) for k in node[1])
    if kind == "not":
        # A negated attribute keeps the lines that lack it (IS NOT TRUE).
        return evaluate(node[1], row, source_ids) is not True
    if kind == "word":
        return word_match(row["message"], node[1])
    if kind == "regex":
        return node[1].search(row["message"]) is not None
    if kind == "source":
        hit = row["source_id"] in source_ids(node[2])
        return hit if node[1] == "=" else not hit
    if kind == "col":
        _, col, op, val = node
        v = row[col]
        if v is None:
            return None
        hit = glob_re(val).match(v) is not None if ("*" in val or "?" in val) else v == val
        return hit if op == "=" else not hit
    if kind == "num":
        _, col, op, num = node
        v = row["severity" if col == "severity" else "facility"]
        return None if v is None else CMP[op](v, num)
    if kind == "field":
        _, key, op, val = node
        occurrences = logfmt_values(row["message"], key)
        if "*" in val or "?" in val:
            def eq(v, quoted):
                return glob_re(val, "." if quoted else r"[^\x01-\x20]").match(v) is not None
        else:
            def eq(v, quoted):
                return v == val
        hits = [any(eq(v, q) for v, q in readings) for readings in occurrences]
        # key:!=v needs the field: an occurrence whose value is not v
        logfmt = any(hits) if op == "=" else any(not h for h in hits)
        return logfmt or json_field(row["message"], key, op, val)
    if kind == "field_num":
        _, key, op, num, dim = node
        v = numeric_field(row["message"], key, dim)
        j = json_number(row["message"], key, dim)
        return _or([None if v is None else CMP[op](v, num), j is not None and CMP[op](j, num)])
    raise AssertionError(node)


def matching_ids(query, rows, scope_ids, names):
    """ids of rows (within scope_ids) matching query. names: {source name: id} of every
    source; a source:NAME term resolves only inside the scope."""
    tree = parse(query)

    def source_ids(pattern):
        rx = glob_re(pattern)
        return {sid for name, sid in names.items() if sid in scope_ids and rx.match(name)}

    return {r["id"] for r in rows
            if r["source_id"] in scope_ids and evaluate(tree, r, source_ids) is True}
