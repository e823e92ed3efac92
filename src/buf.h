/* A growable byte buffer for the parts of the core that do not touch Lua.
 * Freeing wipes the bytes: buffers may hold keys, signatures and bodies. */
#ifndef ECDN_BUF_H
#define ECDN_BUF_H

#include <stddef.h>

typedef struct {
    char *data;   /* NUL-terminated when len > 0 or after any add */
    size_t len;
    size_t cap;
    int failed;   /* sticky: set once an allocation failed */
} ecdn_buf;

/* A borrowed byte string; ptr == NULL means "absent". */
typedef struct {
    const char *ptr;
    size_t len;
} ecdn_str;

void ecdn_buf_init(ecdn_buf *b);
int ecdn_buf_add(ecdn_buf *b, const void *p, size_t n);   /* 0 ok, -1 out of memory */
int ecdn_buf_adds(ecdn_buf *b, const char *s);
int ecdn_buf_addc(ecdn_buf *b, char c);
int ecdn_buf_addstr(ecdn_buf *b, ecdn_str s);
void ecdn_buf_reset(ecdn_buf *b);                          /* len = 0, clears failed, keeps memory */
void ecdn_buf_free(ecdn_buf *b);                           /* wipes, frees, idempotent */

#endif
