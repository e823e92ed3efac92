/* Request building, the first stage of the pipeline: local URL checks and
 * the exact JSON bodies of PurgeUrlsCache ({"Urls":[...]}) and
 * PurgePathCache ({"Paths":[...],"FlushType":"..."}).
 * No Lua here, so both can be fuzzed directly. */
#ifndef ECDN_PURGE_H
#define ECDN_PURGE_H

#include "buf.h"

enum {
    ECDN_URL_OK = 0,
    ECDN_URL_EMPTY_LIST,  /* no URLs at all */
    ECDN_URL_NOT_STRING,  /* set by callers that see non-string items */
    ECDN_URL_SCHEME,      /* does not start with http:// or https:// */
    ECDN_URL_NO_HOST,     /* no host between :// and the path (userinfo and port aside) */
    ECDN_URL_SPACE,       /* ASCII or Unicode whitespace */
    ECDN_URL_CONTROL,     /* C0/C1 control character or DEL */
    ECDN_URL_UTF8,        /* invalid UTF-8 (refused, never altered) */
    ECDN_URL_WILDCARD,    /* '*' in the host */
    ECDN_URL_NOMEM        /* out of memory while building */
};

/* Checks one URL; *at = byte offset of the offending character (0 when the
 * problem is not tied to one). */
int ecdn_url_check(const char *p, size_t n, size_t *at);

/* A short, fixed English reason, e.g. "contains whitespace". */
const char *ecdn_url_problem_text(int problem);
/* A stable machine name, e.g. "space". */
const char *ecdn_url_problem_name(int problem);

/* Appends {"Urls":["...",...]} to b. Returns ECDN_URL_OK, or the first
 * problem with *index = its 0-based position and *at its byte offset. */
int ecdn_purge_body(ecdn_buf *b, const ecdn_str *urls, size_t n, size_t *index, size_t *at);

/* Appends {"<field>":[...]<tail>} to b, each item checked as a URL; tail is
 * raw JSON (e.g. ,"FlushType":"flush") or NULL. Results as ecdn_purge_body. */
int ecdn_list_body(ecdn_buf *b, const char *field, const ecdn_str *items, size_t n, const char *tail,
                   size_t *index, size_t *at);

#endif
