/* Exact JSON string encoding for request bodies (no Lua here, fuzzable).
 * Valid UTF-8 passes through unchanged; '"', '\\' and control bytes are
 * escaped; invalid UTF-8 is refused rather than silently altered, because
 * the service reads bodies as UTF-8 and a changed URL is a lost URL. */
#ifndef ECDN_JSON_H
#define ECDN_JSON_H

#include "buf.h"

/* Index of the first byte that is not part of valid UTF-8 (no overlongs,
 * no surrogates, nothing above U+10FFFF), or n when the whole string is valid. */
size_t ecdn_utf8_invalid_at(const char *p, size_t n);

/* Appends "..." (with quotes). Returns 0, or -1 on invalid UTF-8 / out of memory
 * (b->failed tells which). */
int ecdn_json_add_string(ecdn_buf *b, const char *p, size_t n);

#endif
