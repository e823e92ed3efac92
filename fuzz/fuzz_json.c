/* libFuzzer target: the JSON string encoder and the UTF-8 validator.
 * - ecdn_utf8_invalid_at must agree with an independent validator written
 *   from the Unicode well-formed byte table (Unicode 15, table 3-7);
 * - invalid UTF-8 is refused: -1, the buffer untouched and not marked failed;
 * - valid UTF-8 comes out as one JSON string that a strict decoder (RFC 8259)
 *   turns back into exactly the input bytes, with only '"', '\\' and control
 *   bytes escaped. */
#include "fuzz_input.h"
#include "json.h"
#include "fuzz_strict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy, so ASan sees any read past the end of the input. */
    unsigned char *in = (unsigned char *)malloc(size ? size : 1);
    size_t want_bad = first_invalid(data, size), got_bad, i, want_len = 2, pos;
    ecdn_buf b;
    int rc;

    FUZZ_CHECK(in != NULL);
    if (size) memcpy(in, data, size);
    got_bad = ecdn_utf8_invalid_at((const char *)in, size);
    FUZZ_CHECK(got_bad == want_bad);

    ecdn_buf_init(&b);
    FUZZ_CHECK(ecdn_buf_add(&b, "[", 1) == 0); /* the encoder appends after what is there */
    rc = ecdn_json_add_string(&b, (const char *)in, size);
    if (want_bad != size) {
        FUZZ_CHECK(rc == -1 && !b.failed && b.len == 1 && b.data[0] == '[' && b.data[1] == '\0');
    } else {
        unsigned char *dec;
        long dn;
        FUZZ_CHECK(rc == 0 && !b.failed && b.len >= 3 && b.data[0] == '[' && b.data[b.len] == '\0');
        dec = (unsigned char *)malloc(b.len);
        FUZZ_CHECK(dec != NULL);
        FUZZ_CHECK(first_invalid((const unsigned char *)b.data, b.len) == b.len);
        pos = 1;
        dn = json_decode_at((const unsigned char *)b.data, b.len, &pos, dec);
        FUZZ_CHECK(pos == b.len);
        FUZZ_CHECK(dn >= 0 && (size_t)dn == size && (size == 0 || memcmp(dec, in, size) == 0));
        free(dec);
        /* Minimal escaping: only '"', '\\' and bytes below 0x20 are escaped
         * (7 short forms, \u00XX for the rest); everything else passes raw. */
        for (i = 0; i < size; i++) {
            unsigned char c = in[i];
            if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') want_len += 2;
            else if (c < 0x20) want_len += 6;
            else want_len += 1;
        }
        FUZZ_CHECK(b.len - 1 == want_len);
    }
    ecdn_buf_free(&b);
    free(in);
    return 0;
}
