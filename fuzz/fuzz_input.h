/* Splits a libFuzzer input into fields. Each field is one length byte and then
 * that many bytes (cut short at the end of the input), so a field can hold any
 * byte, NUL included; the fuzzer learns the layout quickly from the seeds. */
#ifndef ECDN_FUZZ_INPUT_H
#define ECDN_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

typedef struct {
    const uint8_t *p;
    size_t n;
} fuzz_in;

static inline unsigned fuzz_byte(fuzz_in *in)
{
    unsigned b;
    if (in->n == 0) return 0;
    b = in->p[0];
    in->p++;
    in->n--;
    return b;
}

static inline long long fuzz_i64(fuzz_in *in)
{
    unsigned long long v = 0;
    int i;
    for (i = 0; i < 8; i++) v = (v << 8) | fuzz_byte(in);
    return (long long)v;
}

/* A field copied into its own heap block, so ASan sees any read past its end. */
static inline ecdn_str fuzz_field(fuzz_in *in, void **owned)
{
    size_t len = fuzz_byte(in);
    ecdn_str s;
    char *copy;
    if (len > in->n) len = in->n;
    copy = (char *)malloc(len ? len : 1);
    if (copy == NULL) abort();
    if (len) memcpy(copy, in->p, len);
    in->p += len;
    in->n -= len;
    *owned = copy;
    s.ptr = copy;
    s.len = len;
    return s;
}

/* The rest of the input as one field (e.g. a payload). */
static inline ecdn_str fuzz_rest(fuzz_in *in, void **owned)
{
    ecdn_str s;
    char *copy = (char *)malloc(in->n ? in->n : 1);
    if (copy == NULL) abort();
    if (in->n) memcpy(copy, in->p, in->n);
    s.ptr = copy;
    s.len = in->n;
    in->p += in->n;
    in->n = 0;
    *owned = copy;
    return s;
}

static inline int fuzz_breaker(ecdn_str s)
{
    size_t i;
    for (i = 0; i < s.len; i++)
        if (s.ptr[i] == '\r' || s.ptr[i] == '\n' || s.ptr[i] == '\0') return 1;
    return 0;
}

#define FUZZ_CHECK(cond)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                              \
        }                                                                         \
    } while (0)

#endif
