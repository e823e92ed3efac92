#include "answer.h"

#include <string.h>

typedef struct {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

/* The token `lit` after optional whitespace. */
static int expect(cursor *c, const char *lit, size_t n)
{
    skip_ws(c);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0) return 0;
    c->p += n;
    return 1;
}

/* A string of 1..ECDN_MAX_ID bytes in 0x20..0x7E without '"' or '\\'
 * (nothing to unescape, nothing decode.clean would change). */
static int plain_string(cursor *c, ecdn_str *out)
{
    const char *s;
    skip_ws(c);
    if (c->p == c->end || *c->p != '"') return 0;
    s = ++c->p;
    while (c->p < c->end && *c->p != '"') {
        unsigned char b = (unsigned char)*c->p;
        if (b < 0x20 || b > 0x7E || b == '\\') return 0;
        c->p++;
    }
    if (c->p == c->end) return 0;
    out->ptr = s;
    out->len = (size_t)(c->p - s);
    c->p++; /* the closing quote */
    return out->len >= 1 && out->len <= ECDN_MAX_ID;
}

#define LIT(c, s) expect((c), (s), sizeof(s) - 1)

int ecdn_answer_task(const char *body, size_t len, ecdn_str *task_id, ecdn_str *request_id)
{
    cursor c;
    ecdn_str first, second;
    int task_first;

    if (body == NULL) return 0;
    c.p = body;
    c.end = body + len;
    if (!LIT(&c, "{") || !LIT(&c, "\"Response\"") || !LIT(&c, ":") || !LIT(&c, "{")) return 0;
    if (LIT(&c, "\"TaskId\"")) task_first = 1;
    else if (LIT(&c, "\"RequestId\"")) task_first = 0;
    else return 0;
    if (!LIT(&c, ":") || !plain_string(&c, &first) || !LIT(&c, ",")) return 0;
    if (!(task_first ? LIT(&c, "\"RequestId\"") : LIT(&c, "\"TaskId\""))) return 0;
    if (!LIT(&c, ":") || !plain_string(&c, &second) || !LIT(&c, "}") || !LIT(&c, "}")) return 0;
    skip_ws(&c);
    if (c.p != c.end) return 0;
    *task_id = task_first ? first : second;
    *request_id = task_first ? second : first;
    return 1;
}
