/* See floor_request.h. */
#include "floor_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int floor_request_parse(floor_request *r, char *text, size_t len, char *err, size_t errlen)
{
    char *line = text;
    memset(r, 0, sizeof *r);
    r->text = text;
    r->headers = curl_slist_append(NULL, "Expect:"); /* as src/http.c: no 100-continue */
    for (;;) {
        char *end = strchr(line, '\n');
        if (end == NULL) {
            snprintf(err, errlen, "no empty line after the header lines");
            return -1;
        }
        *end = '\0';
        if (line == end) {
            r->body = end + 1;
            break;
        }
        if (strncmp(line, "User-Agent: ", 12) == 0) {
            r->ua = line + 12;
        } else {
            r->headers = curl_slist_append(r->headers, line);
            r->lines = curl_slist_append(r->lines, line);
        }
        line = end + 1;
    }
    r->bodylen = len - (size_t)(r->body - text);
    return 0;
}

void floor_request_free(floor_request *r)
{
    curl_slist_free_all(r->headers);
    curl_slist_free_all(r->lines);
    free(r->text);
    memset(r, 0, sizeof *r);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    floor_sink *s = (floor_sink *)ud;
    size_t len = size * n;
    if (len > sizeof s->data - s->len) return 0;
    memcpy(s->data + s->len, p, len);
    s->len += len;
    return len;
}

void floor_setup(CURL *c, const char *url, const floor_request *r, floor_sink *s)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    if (r->ua) curl_easy_setopt(c, CURLOPT_USERAGENT, r->ua);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->bodylen);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
}
