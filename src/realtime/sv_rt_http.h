/* The HTTP side of streamvibe-realtime: parsing the request head of a
 * WebSocket upgrade (RFC 6455 section 4.2.1) and the answer's accept
 * key. Pure code, unit-tested on its own. */
#ifndef SV_RT_HTTP_H
#define SV_RT_HTTP_H

#include <stddef.h>

/* Sec-WebSocket-Accept is 28 base64 characters. */
#define SV_RT_ACCEPT_LEN 28

typedef struct sv_rt_http_req {
    char        method[8];
    const char *path;       /* into the buffer; NUL-terminated */
    const char *query;      /* after '?', NUL-terminated ("" when none) */
    int         http11;     /* HTTP/1.1 or later */
    int         upgrade_websocket; /* Upgrade: websocket */
    int         connection_upgrade; /* Connection lists "upgrade" */
    const char *ws_key;     /* Sec-WebSocket-Key, or NULL */
    const char *ws_version; /* Sec-WebSocket-Version, or NULL */
    const char *apikey;     /* apikey or x-api-key header, or NULL */
    const char *forwarded_for; /* X-Forwarded-For, or NULL */
} sv_rt_http_req;

/* Length of the request head in buf[0..len) including the blank line
 * that ends it, or 0 while it is incomplete. */
size_t sv_rt_http_head_len(const char *buf, size_t len);

/* Parses the complete head buf[0..len) in place (values are terminated
 * inside buf). Returns 0, or -1 when it is not a well-formed HTTP/1.x
 * request (bad request line, a control character or bare CR, a header
 * line without a colon, obsolete line folding). */
int sv_rt_http_parse(char *buf, size_t len, sv_rt_http_req *req);

/* Finds name in the query string q and percent-decodes its value into
 * out (size outlen, NUL-terminated; '+' is a space). Returns the decoded
 * length, -1 when absent, -2 when malformed or too long. */
int sv_rt_http_query_param(const char *q, const char *name, char *out, size_t outlen);

/* True when the header value is a comma-separated list containing token
 * (case-insensitive). */
int sv_rt_http_has_token(const char *value, const char *token);

/* The Sec-WebSocket-Accept for key: base64(SHA-1(key + the RFC's GUID)).
 * Returns 0, or -1 when key is not the base64 of 16 bytes. */
int sv_rt_http_accept(const char *key, char out[SV_RT_ACCEPT_LEN + 1]);

#endif
