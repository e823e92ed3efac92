#include "buf.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

void ecdn_buf_init(ecdn_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

static int grow(ecdn_buf *b, size_t need)
{
    size_t cap = b->cap ? b->cap : 64;
    char *p;
    while (cap < need) {
        if (cap > ((size_t)-1) / 2) { cap = need; break; }
        cap *= 2;
    }
    /* Not realloc: the old block may hold secrets and must be wiped. */
    p = malloc(cap);
    if (p == NULL) { b->failed = 1; return -1; }
    if (b->data) {
        memcpy(p, b->data, b->len + 1);
        OPENSSL_cleanse(b->data, b->cap);
        free(b->data);
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int ecdn_buf_add(ecdn_buf *b, const void *p, size_t n)
{
    if (b->failed) return -1;
    if (n > ((size_t)-1) - b->len - 1) { b->failed = 1; return -1; }
    if (b->len + n + 1 > b->cap && grow(b, b->len + n + 1) != 0) return -1;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int ecdn_buf_adds(ecdn_buf *b, const char *s) { return ecdn_buf_add(b, s, strlen(s)); }
int ecdn_buf_addc(ecdn_buf *b, char c) { return ecdn_buf_add(b, &c, 1); }
int ecdn_buf_addstr(ecdn_buf *b, ecdn_str s) { return ecdn_buf_add(b, s.ptr, s.len); }

void ecdn_buf_reset(ecdn_buf *b)
{
    if (b->data) { OPENSSL_cleanse(b->data, b->len); b->data[0] = '\0'; }
    b->len = 0;
    b->failed = 0;
}

void ecdn_buf_free(ecdn_buf *b)
{
    if (b->data) {
        OPENSSL_cleanse(b->data, b->cap);
        free(b->data);
    }
    ecdn_buf_init(b);
}
