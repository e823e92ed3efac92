/* Independent checkers shared by the fuzz targets: a UTF-8 validator written
 * from the Unicode well-formed byte table (Unicode 15, table 3-7) and a strict
 * JSON string decoder. Deliberately not sharing code with src/. */
#ifndef ECDN_FUZZ_STRICT_H
#define ECDN_FUZZ_STRICT_H

#include <stddef.h>

/* Length of the well-formed sequence at p (n bytes left), 0 if ill-formed. */
static inline size_t wf_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t len, k;
    if (c <= 0x7F) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) len = 3;
    else if (c == 0xED) { len = 3; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) len = 3;
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) { len = 4; hi = 0x8F; }
    else return 0;
    if (n < len) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (k = 2; k < len; k++)
        if (p[k] < 0x80 || p[k] > 0xBF) return 0;
    return len;
}

static inline size_t first_invalid(const unsigned char *p, size_t n)
{
    size_t i = 0, l;
    while (i < n) {
        l = wf_len(p + i, n - i);
        if (l == 0) return i;
        i += l;
    }
    return n;
}

static inline int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    int k;
    for (k = 0; k < 4; k++) {
        unsigned char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    *out = v;
    return 0;
}

static inline size_t put_utf8(unsigned cp, unsigned char *o)
{
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xC0 | cp >> 6); o[1] = (unsigned char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12); o[1] = (unsigned char)(0x80 | (cp >> 6 & 63));
        o[2] = (unsigned char)(0x80 | (cp & 63)); return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18); o[1] = (unsigned char)(0x80 | (cp >> 12 & 63));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 63)); o[3] = (unsigned char)(0x80 | (cp & 63)); return 4;
}

/* Strict RFC 8259 decoder for the JSON string starting at s[*pos] (s holds
 * n bytes, already checked to be UTF-8). Decodes into out (room for n bytes),
 * returns the decoded length and moves *pos past the closing quote, or -1. */
static inline long json_decode_at(const unsigned char *s, size_t n, size_t *pos, unsigned char *out)
{
    size_t i = *pos + 1, o = 0;
    if (*pos >= n || s[*pos] != '"') return -1;
    while (i < n) {
        unsigned char c = s[i];
        if (c == '"') { *pos = i + 1; return (long)o; }
        if (c < 0x20) return -1;
        if (c != '\\') { out[o++] = c; i++; continue; }
        if (i + 1 >= n) return -1;
        switch (s[i + 1]) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (n - i < 6 || hex4(s + i + 2, &cp)) return -1;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return -1;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (n - i < 12 || s[i + 6] != '\\' || s[i + 7] != 'u' || hex4(s + i + 8, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            o += put_utf8(cp, out + o);
            i += 4;
            break;
        }
        default: return -1;
        }
        i += 2;
    }
    return -1; /* no closing quote */
}

#endif
