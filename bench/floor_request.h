/* The curl floor's request (bench/purge.lua --request-out writes it) and an
 * easy handle set up to send it: shared by build/bench/curl_floor (the floor
 * in a process of its own) and the curl_floor Lua module (the floor inside
 * the process that runs client:purge, bench/interleaved.lua). */
#ifndef FLOOR_REQUEST_H
#define FLOOR_REQUEST_H

#include <stddef.h>
#include <curl/curl.h>

typedef struct {
    char data[65536];
    size_t len;
} floor_sink;

typedef struct {
    char *text;                 /* the request, cut into lines in place (owned) */
    const char *ua;             /* the User-Agent line's value, or NULL */
    struct curl_slist *headers; /* "Expect:" (as src/http.c) and the header lines */
    struct curl_slist *lines;   /* the header lines alone */
    const char *body;
    size_t bodylen;
} floor_request;

/* "User-Agent: ..." on the first line, then "Name: value" lines, an empty
 * line, and the body (the rest, exactly). Takes `text` (malloc'd, NUL after
 * len bytes) whatever the outcome; 0, or -1 with a message in err. */
int floor_request_parse(floor_request *r, char *text, size_t len, char *err, size_t errlen);
void floor_request_free(floor_request *r);

/* One handle that POSTs the request's body with its headers to url, on one
 * kept-alive connection, the answer's body going into s. */
void floor_setup(CURL *c, const char *url, const floor_request *r, floor_sink *s);

#endif
