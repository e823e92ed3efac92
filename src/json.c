#include "json.h"

size_t ecdn_utf8_invalid_at(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i], need, min, cp, k;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) { need = 1; min = 0x80; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; min = 0x800; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; min = 0x10000; cp = c & 0x07; }
        else return i;
        if (n - i <= need) return i;
        for (k = 1; k <= need; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += need + 1;
    }
    return n;
}

int ecdn_json_add_string(ecdn_buf *b, const char *p, size_t n)
{
    static const char HEX[] = "0123456789abcdef";
    size_t i, run = 0;
    if (ecdn_utf8_invalid_at(p, n) != n) return -1;
    if (ecdn_buf_addc(b, '"')) return -1;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        const char *esc = NULL;
        char u[6];
        size_t elen = 2;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20) {
                u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
                u[4] = HEX[c >> 4]; u[5] = HEX[c & 15];
                esc = u;
                elen = 6;
            }
        }
        if (esc == NULL) { run++; continue; }
        /* Copy the clean run before this byte in one go. */
        if (ecdn_buf_add(b, p + i - run, run) || ecdn_buf_add(b, esc, elen)) return -1;
        run = 0;
    }
    if (ecdn_buf_add(b, p + n - run, run)) return -1;
    return ecdn_buf_addc(b, '"');
}
