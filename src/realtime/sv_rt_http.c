#include "realtime/sv_rt_http.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "http/sv_http.h"

size_t sv_rt_http_head_len(const char *buf, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return i + 1;
    return 0;
}

static char *sv_rt_trim(char *s, char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    return s;
}

int sv_rt_http_parse(char *buf, size_t len, sv_rt_http_req *req)
{
    memset(req, 0, sizeof(*req));
    if (len < 4 || buf[len - 1] != '\n')
        return -1;
    /* Only CRLF line ends, no NUL, no control characters but tab. */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\r') {
            if (i + 1 >= len || buf[i + 1] != '\n')
                return -1;
        } else if (ch == '\n') {
            if (i == 0 || buf[i - 1] != '\r')
                return -1;
        } else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            return -1;
        }
    }

    char *line = buf, *end = buf + len;
    char *eol = strstr(line, "\r\n");
    if (eol == NULL)
        return -1;
    *eol = '\0';
    /* Request line: METHOD SP target SP HTTP/1.x */
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || strchr(sp2 + 1, ' ') != NULL)
        return -1;
    size_t mlen = (size_t)(sp1 - line);
    if (mlen == 0 || mlen >= sizeof(req->method))
        return -1;
    for (size_t i = 0; i < mlen; i++)
        if (!isupper((unsigned char)line[i]))
            return -1;
    memcpy(req->method, line, mlen);
    *sp1 = '\0';
    *sp2 = '\0';
    char *target = sp1 + 1, *version = sp2 + 1;
    if (target[0] != '/')
        return -1;
    if (strncmp(version, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)version[7]) || version[8] != '\0')
        return -1;
    req->http11 = version[7] >= '1';
    char *q = strchr(target, '?');
    if (q != NULL) {
        *q = '\0';
        req->query = q + 1;
    } else {
        req->query = "";
    }
    req->path = target;

    line = eol + 2;
    while (line < end) {
        eol = strstr(line, "\r\n");
        if (eol == NULL)
            return -1;
        if (eol == line)
            break; /* the blank line */
        if (*line == ' ' || *line == '\t')
            return -1; /* obsolete line folding */
        *eol = '\0';
        char *colon = strchr(line, ':');
        if (colon == NULL || colon == line)
            return -1;
        for (char *p = line; p < colon; p++)
            if (*p == ' ' || *p == '\t')
                return -1;
        *colon = '\0';
        char *value = sv_rt_trim(colon + 1, eol);
        if (strcasecmp(line, "upgrade") == 0)
            req->upgrade_websocket = sv_rt_http_has_token(value, "websocket");
        else if (strcasecmp(line, "connection") == 0)
            req->connection_upgrade = req->connection_upgrade || sv_rt_http_has_token(value, "upgrade");
        else if (strcasecmp(line, "sec-websocket-key") == 0)
            req->ws_key = value;
        else if (strcasecmp(line, "sec-websocket-version") == 0)
            req->ws_version = value;
        else if (strcasecmp(line, "apikey") == 0 || strcasecmp(line, "x-api-key") == 0)
            req->apikey = value;
        else if (strcasecmp(line, "x-forwarded-for") == 0)
            req->forwarded_for = value;
        line = eol + 2;
    }
    return 0;
}

int sv_rt_http_has_token(const char *value, const char *token)
{
    size_t tlen = strlen(token);
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *stop = p;
        while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        if ((size_t)(stop - start) == tlen && strncasecmp(start, token, tlen) == 0)
            return 1;
    }
    return 0;
}

int sv_rt_http_query_param(const char *q, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = q;
    while (*p) {
        const char *amp = strchr(p, '&');
        const char *stop = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            size_t n = 0;
            for (const char *v = eq ? eq + 1 : stop; v < stop; v++) {
                int ch = (unsigned char)*v;
                if (ch == '%') {
                    int hi = v + 2 < stop ? sv_http_hex_digit((unsigned char)v[1]) : -1;
                    int lo = hi >= 0 ? sv_http_hex_digit((unsigned char)v[2]) : -1;
                    if (lo < 0)
                        return -2;
                    ch = hi * 16 + lo;
                    v += 2;
                    if (ch == 0)
                        return -2;
                } else if (ch == '+') {
                    ch = ' ';
                }
                if (n + 1 >= outlen)
                    return -2;
                out[n++] = (char)ch;
            }
            out[n] = '\0';
            return (int)n;
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    return -1;
}

int sv_rt_http_accept(const char *key, char out[SV_RT_ACCEPT_LEN + 1])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char raw[32];
    size_t rawlen = 0;
    size_t klen = strlen(key);
    if (klen != 24 || sodium_base642bin(raw, sizeof(raw), key, klen, NULL, &rawlen, NULL,
                                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
        rawlen != 16)
        return -1;
    char cat[24 + sizeof(guid)];
    memcpy(cat, key, 24);
    memcpy(cat + 24, guid, sizeof(guid));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(cat, 24 + sizeof(guid) - 1, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
        return -1;
    sodium_bin2base64(out, SV_RT_ACCEPT_LEN + 1, md, 20, sodium_base64_VARIANT_ORIGINAL);
    return 0;
}
