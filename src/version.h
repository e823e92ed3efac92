/* The one place that names the version and the user agent. */
#ifndef ECDN_VERSION_H
#define ECDN_VERSION_H

#define ECDN_VERSION "0.1.0"
#define ECDN_USER_AGENT "lua-ecdn/" ECDN_VERSION

#endif
