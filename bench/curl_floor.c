/* The floor for one purge on a kept-alive connection: a bare libcurl loop
 * (easy interface, one handle, one connection) POSTing the same body with
 * the same header lines and User-Agent as ecdn.client sends, to the same
 * server, reading the answer into a buffer and checking its status. No
 * signing, no JSON, no Lua: what is left is libcurl, the kernel and the
 * server.
 *   build/bench/curl_floor URL SECONDS REQUEST_FILE [--tsv] [--read-callback] [--multi]
 *                          [--slist-each] [--count N]
 * REQUEST_FILE (written by bench/purge.lua --request-out): "User-Agent: ..."
 * on the first line, then one "Name: value" line per header, then an empty
 * line, then the body (the rest of the file, exactly).
 * Prints wall-clock and CPU (this process) microseconds per request, from
 * batches of 100: the fastest tenth of the batches, the machine being shared.
 * The options make the loop do one thing the way src/http.c does it, to see
 * what each costs: --read-callback hands the body over from a read callback
 * (libcurl then sends the headers and the body in two send() calls),
 * --multi drives the handle with curl_multi_perform/curl_multi_poll and adds
 * and removes it around every request, --slist-each builds the header list
 * anew for every request. --count N makes exactly N requests after the
 * warm-up and prints nothing (bench/instructions.lua counts their
 * instructions under callgrind). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#include "floor_request.h"

#define BATCH 100
#define MAX_SAMPLES 100000

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    const char *p;
    size_t left;
} source;

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
    source *src = (source *)ud;
    size_t len = size * n < src->left ? size * n : src->left;
    memcpy(buf, src->p, len);
    src->p += len;
    src->left -= len;
    return len;
}

static int perform_multi(CURLM *m, CURL *c)
{
    int running = 1, left;
    CURLMsg *msg;
    CURLcode rc = CURLE_FAILED_INIT;
    if (curl_multi_add_handle(m, c) != CURLM_OK) return -1;
    while (running) {
        if (curl_multi_perform(m, &running) != CURLM_OK) break;
        if (running && curl_multi_poll(m, NULL, 0, 1000, NULL) != CURLM_OK) break;
    }
    while ((msg = curl_multi_info_read(m, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == c) rc = msg->data.result;
    curl_multi_remove_handle(m, c);
    return rc == CURLE_OK ? 0 : -1;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        perror(path);
        exit(2);
    }
    buf = (char *)malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        perror(path);
        exit(2);
    }
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* One request. lines != NULL: a fresh header list from those lines first. */
static int one(CURL *c, CURLM *m, floor_sink *s, source *src, const char *body, size_t bodylen,
               const struct curl_slist *lines, struct curl_slist **each)
{
    s->len = 0;
    src->p = body;
    src->left = bodylen;
    if (lines) {
        struct curl_slist *l = curl_slist_append(NULL, "Expect:");
        for (; lines; lines = lines->next) l = curl_slist_append(l, lines->data);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, l);
        curl_slist_free_all(*each);
        *each = l;
    }
    if (m) return perform_multi(m, c);
    return curl_easy_perform(c) == CURLE_OK ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *url;
    double seconds, w0, c0, bw, bc, wall, cpu;
    static double wall_s[MAX_SAMPLES], cpu_s[MAX_SAMPLES];
    size_t ns;
    int tsv = 0, read_cb = 0, multi = 0, slist_each = 0, i;
    long count = -1;
    floor_request r;
    char *req, errbuf[128];
    size_t reqlen;
    long n = 0, status = 0;
    static floor_sink s;
    source src;
    CURL *c;
    CURLM *m = NULL;
    struct curl_slist *lines, *each = NULL;
    const char *body;
    size_t bodylen;

    if (argc < 4) {
        fprintf(stderr, "usage: curl_floor URL SECONDS REQUEST_FILE [--tsv]\n");
        return 2;
    }
    url = argv[1];
    seconds = atof(argv[2]);
    req = read_file(argv[3], &reqlen);
    for (i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--tsv") == 0) tsv = 1;
        else if (strcmp(argv[i], "--read-callback") == 0) read_cb = 1;
        else if (strcmp(argv[i], "--multi") == 0) multi = 1;
        else if (strcmp(argv[i], "--slist-each") == 0) slist_each = 1;
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) count = atol(argv[++i]);
        else { fprintf(stderr, "curl_floor: unknown option %s\n", argv[i]); return 2; }
    }

    if (floor_request_parse(&r, req, reqlen, errbuf, sizeof errbuf) != 0) {
        fprintf(stderr, "curl_floor: %s: %s\n", argv[3], errbuf);
        return 2;
    }
    body = r.body;
    bodylen = r.bodylen;
    lines = r.lines;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    c = curl_easy_init();
    floor_setup(c, url, &r, &s);
    if (read_cb) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, (char *)NULL);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &src);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)bodylen);
    }
    if (multi) m = curl_multi_init();

    /* Warm-up: the connection is made here, then kept. */
    for (n = 0; n < 200; n++) {
        if (one(c, m, &s, &src, body, bodylen, slist_each ? lines : NULL, &each) != 0) {
            fprintf(stderr, "curl_floor: request failed\n");
            return 1;
        }
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) { fprintf(stderr, "curl_floor: HTTP %ld\n", status); return 1; }

    if (count >= 0) {
        for (n = 0; n < count; n++) {
            if (one(c, m, &s, &src, body, bodylen, slist_each ? lines : NULL, &each) != 0) {
                fprintf(stderr, "curl_floor: request failed\n");
                return 1;
            }
        }
        return 0;
    }

    /* Batches of 100 requests; the figures are those of the fastest tenth of
     * the batches, wall-clock and CPU each (the machine is shared: a batch
     * another job interrupted says nothing about the code). */
    n = 0;
    ns = 0;
    w0 = now(CLOCK_MONOTONIC);
    c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    bw = w0;
    bc = c0;
    do {
        int k;
        double w1, c1;
        for (k = 0; k < BATCH; k++) {
            if (one(c, m, &s, &src, body, bodylen, slist_each ? lines : NULL, &each) != 0) {
                fprintf(stderr, "curl_floor: request failed\n");
                return 1;
            }
            n++;
        }
        w1 = now(CLOCK_MONOTONIC);
        c1 = now(CLOCK_PROCESS_CPUTIME_ID);
        if (ns < MAX_SAMPLES) {
            wall_s[ns] = w1 - bw;
            cpu_s[ns] = c1 - bc;
            ns++;
        }
        bw = w1;
        bc = c1;
        wall = w1 - w0;
    } while (wall < seconds);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 || s.len == 0) { fprintf(stderr, "curl_floor: HTTP %ld\n", status); return 1; }
    qsort(wall_s, ns, sizeof wall_s[0], cmp_double);
    qsort(cpu_s, ns, sizeof cpu_s[0], cmp_double);
    wall = wall_s[ns / 10] / BATCH;
    cpu = cpu_s[ns / 10] / BATCH;

    if (tsv) {
        printf("curl_wall_us\t%.2f\ncurl_cpu_us\t%.2f\ncurl_requests\t%ld\n", wall * 1e6, cpu * 1e6, n);
    } else {
        printf("curl floor: %ld requests, %.1f us each (wall), %.1f us CPU each (fastest tenth of batches)\n", n,
               wall * 1e6, cpu * 1e6);
    }
    if (m) curl_multi_cleanup(m);
    curl_easy_cleanup(c);
    curl_slist_free_all(each);
    floor_request_free(&r);
    curl_global_cleanup();
    return 0;
}
