/* libFuzzer target: the fast path of stage 4 (src/answer.c).
 * An independent oracle says what ecdn_answer_task must do with any body:
 * with the JSON whitespace outside strings removed, the body must read
 * exactly {"Response":{"TaskId":"T","RequestId":"R"}} or the same with the
 * members swapped, T and R being 1..ECDN_MAX_ID bytes of printable ASCII
 * other than '"' and '\\'. Accept exactly those (returning T and R, pointing
 * into the body), decline everything else. */
#include "fuzz_input.h"
#include "answer.h"

static const char HEAD[] = "{\"Response\":{\"";
static const char TAIL[] = "\"}}";

/* Removes JSON whitespace outside strings (a backslash in a string keeps the
 * next byte in it). */
static size_t strip(const uint8_t *in, size_t n, char *out)
{
    size_t i, k = 0;
    int in_string = 0;
    for (i = 0; i < n; i++) {
        uint8_t c = in[i];
        if (in_string) {
            out[k++] = (char)c;
            if (c == '\\' && i + 1 < n) out[k++] = (char)in[++i];
            else if (c == '"') in_string = 0;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        } else {
            out[k++] = (char)c;
            if (c == '"') in_string = 1;
        }
    }
    return k;
}

static int plain(const char *p, size_t n)
{
    size_t i;
    if (n < 1 || n > ECDN_MAX_ID) return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c > 0x7E || c == '"' || c == '\\') return 0;
    }
    return 1;
}

/* s = `name":"VALUE` + sep: the value's length, or 0 when s is not that. */
static size_t member(const char *s, size_t n, const char *name, const char *sep, size_t *used)
{
    size_t nl = strlen(name), sl = strlen(sep), v;
    if (n < nl + 3 || memcmp(s, name, nl) != 0 || memcmp(s + nl, "\":\"", 3) != 0) return 0;
    s += nl + 3;
    n -= nl + 3;
    for (v = 0; v < n && s[v] != '"'; v++) {}
    if (v == n || n - v < sl || memcmp(s + v, sep, sl) != 0) return 0;
    *used = nl + 3 + v + sl;
    return v;
}

/* The oracle: 1 and T, R (as offsets into the stripped text) when it is the answer. */
static int oracle(const char *s, size_t n, const char **t, size_t *tl, const char **r, size_t *rl)
{
    size_t hl = sizeof HEAD - 1, used1, used2, a, b;
    int task_first;
    if (n < hl || memcmp(s, HEAD, hl) != 0) return 0;
    s += hl;
    n -= hl;
    if ((a = member(s, n, "TaskId", "\",\"", &used1)) != 0) task_first = 1;
    else if ((a = member(s, n, "RequestId", "\",\"", &used1)) != 0) task_first = 0;
    else return 0;
    b = member(s + used1, n - used1, task_first ? "RequestId" : "TaskId", TAIL, &used2);
    if (b == 0 || used1 + used2 != n) return 0;
    {
        const char *first = s + used1 - 3 - a, *second = s + n - 3 - b;
        if (!plain(first, a) || !plain(second, b)) return 0;
        *t = task_first ? first : second;
        *tl = task_first ? a : b;
        *r = task_first ? second : first;
        *rl = task_first ? b : a;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = (char *)malloc(size ? size : 1), *stripped = (char *)malloc(size + 1);
    const char *ot = NULL, *orr = NULL;
    size_t otl = 0, orl = 0, sn;
    ecdn_str t, r;
    int want, got;

    FUZZ_CHECK(in != NULL && stripped != NULL);
    if (size) memcpy(in, data, size); /* a private copy: ASan sees reads past the end */
    sn = strip(data, size, stripped);
    want = oracle(stripped, sn, &ot, &otl, &orr, &orl);
    got = ecdn_answer_task(size ? in : NULL, size, &t, &r);
    FUZZ_CHECK(got == want);
    if (got) {
        FUZZ_CHECK(t.ptr >= in && t.ptr + t.len <= in + size && r.ptr >= in && r.ptr + r.len <= in + size);
        FUZZ_CHECK(t.len == otl && memcmp(t.ptr, ot, otl) == 0);
        FUZZ_CHECK(r.len == orl && memcmp(r.ptr, orr, orl) == 0);
    }
    free(in);
    free(stripped);
    return 0;
}
