/* The request and response objects, independent of how they travel:
 * FastCGI (libfcgi) and plain CGI (environment + stdio) each supply an
 * sv_io, and everything above this layer is the same code. */
#ifndef SV_HTTP_H
#define SV_HTTP_H

#include <stddef.h>

#include <json-c/json.h>

#include "core/sv_arena.h"
#include "core/sv_err.h"

typedef struct sv_io {
    char **envp;                                   /* CGI-style NAME=VALUE params */
    int  (*read)(void *ctx, char *buf, int len);   /* >0 bytes, 0 EOF, <0 error */
    /* The whole response at once (CGI head, then body, which may be
     * empty), so a transport can frame it in one write: 0, or -1 when the
     * client has gone away. */
    int  (*send)(void *ctx, const char *head, size_t head_len, const char *body,
                 size_t body_len);
    void *ctx;
} sv_io;

typedef enum {
    SV_HTTP_GET = 1 << 0,
    SV_HTTP_HEAD = 1 << 1,
    SV_HTTP_POST = 1 << 2,
    SV_HTTP_PUT = 1 << 3,
    SV_HTTP_PATCH = 1 << 4,
    SV_HTTP_DELETE = 1 << 5,
    SV_HTTP_OPTIONS = 1 << 6,
} sv_http_method;

typedef struct sv_request {
    sv_arena   *arena;
    char      **envp;
    const char *method_name;
    int         method;          /* sv_http_method bit, 0 if unknown */
    const char *path;            /* the raw (not percent-decoded) URI path,
                                    below base_path once sv_request_strip_base ran */
    const char *sent_path;       /* path as it came, base_path included: what the
                                    access log shows, as the web server's log does */
    int         outside_base;    /* the path is not under base_path: 404 */
    int         path_info;       /* path is CGI's PATH_INFO: already below the
                                    script, so base_path is not taken off */
    const char *query;           /* raw query string, "" when absent */
    const char *request_id;
    const char *remote_addr;
    long        content_length;  /* -1 when not given */
    char       *body;            /* NUL-terminated, NULL until read */
    size_t      body_len;
} sv_request;

typedef struct sv_response {
    sv_arena   *arena;
    int         status;
    sv_buf      headers;         /* "Name: value\r\n" lines */
    sv_buf      body;
    int         head_only;       /* HEAD: send headers, count the body */
    int         has_content_type;
    /* A body sent from memory the response does not own (a PGresult's
     * value) instead of body: a 20 kB page is not copied once more.
     * body_ext_release(body_ext_owner) runs in sv_response_release. */
    const char *body_ext;
    size_t      body_ext_len;
    void      (*body_ext_release)(void *owner);
    void       *body_ext_owner;
} sv_response;

/* Looks up a CGI/FastCGI parameter by exact name; NULL when absent. */
const char *sv_http_param(char *const *envp, const char *name);

/* Builds the request from the params in io->envp. Strings point into the
 * arena or into envp, which outlives the request. */
void sv_request_init(sv_request *req, sv_arena *arena, char **envp);

/* What is left of path below base (base_path: "" or "/api"): "/api/x"
 * gives "/x", "/api" and "/api/" give "/", "" gives path itself. NULL
 * when path is not under base ("/apix", "/x"). Points into path, or at a
 * static "/". */
const char *sv_http_path_under(const char *base, const char *path);

/* req->path below base, or outside_base set (path left as sent). A
 * path from PATH_INFO (no REQUEST_URI) is left alone: the web server
 * has already taken off what leads to the program. */
void sv_request_strip_base(sv_request *req, const char *base);

/* Looks up a request header by its HTTP name ("Content-Type"). */
const char *sv_request_header(const sv_request *req, const char *name);

/* Returns the value of key in the query string, percent-decoded, or NULL.
 * A key present without '=' yields "". */
const char *sv_request_query_param(const sv_request *req, const char *key);

/* The size phase: a Content-Length over limit is a 413 before anything
 * is read. SV_OK, or SV_ERROR with err filled. */
int sv_request_check_size(sv_request *req, long limit, sv_error *err);

/* Reads the body, refusing before reading anything when Content-Length
 * exceeds limit (413). No Content-Length means no body (RFC 3875); a
 * malformed or unfulfilled length is a 400. SV_OK, or SV_ERROR with err
 * filled. */
int sv_request_read_body(sv_request *req, const sv_io *io, long limit, sv_error *err);

void sv_response_init(sv_response *res, sv_arena *arena);
void sv_response_header(sv_response *res, const char *name, const char *value);
/* A header whose value is the number n (without snprintf's cost: the
 * rate phase adds three to every limited answer). */
void sv_response_header_long(sv_response *res, const char *name, long n);
/* Sets status and a JSON body; takes ownership of (and releases) obj. */
void sv_response_json(sv_response *res, int status, json_object *obj);
/* Sends data (len bytes) as the body without copying it; release(owner)
 * is called once the response is done with it. Replaces any body. */
void sv_response_body_ext(sv_response *res, const char *data, size_t len,
                          void (*release)(void *owner), void *owner);
size_t sv_response_body_len(const sv_response *res);
/* Releases what sv_response_body_ext handed over; safe to call twice. */
void sv_response_release(sv_response *res);
/* Writes status line, headers and body to io. Returns SV_OK or SV_ERROR
 * when the client has gone away. */
int sv_response_send(sv_response *res, const sv_io *io);

const char *sv_http_reason(int status);
int sv_http_method_from_name(const char *name);
/* "GET, HEAD, POST" for a method bit mask; result in the arena. */
const char *sv_http_allow_header(sv_arena *arena, int methods);

/* The value of one hexadecimal digit (either case), or -1. */
int sv_http_hex_digit(int c);

/* Percent-decodes s[0..len) ('+' as space when plus_is_space). */
char *sv_http_url_decode(sv_arena *arena, const char *s, size_t len, int plus_is_space);

#endif
