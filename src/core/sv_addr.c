#include "core/sv_addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sv_addr_is_ip(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return s != NULL && s[0] != '\0' &&
           (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

static int sv_addr_cidr_match(const char *entry, const char *addr)
{
    unsigned char want[16], have[16];
    char text[64];
    int bits = -1;

    snprintf(text, sizeof(text), "%s", entry);
    char *slash = strchr(text, '/');
    if (slash != NULL) {
        *slash = '\0';
        bits = atoi(slash + 1);
    }
    int family = strchr(text, ':') ? AF_INET6 : AF_INET;
    int addr_family = strchr(addr, ':') ? AF_INET6 : AF_INET;
    if (family != addr_family || inet_pton(family, text, want) != 1 ||
        inet_pton(family, addr, have) != 1)
        return 0;
    int maxbits = family == AF_INET ? 32 : 128;
    if (bits < 0 || bits > maxbits)
        bits = maxbits;
    for (int i = 0; i < bits / 8; i++)
        if (want[i] != have[i])
            return 0;
    if (bits % 8) {
        unsigned char mask = (unsigned char)(0xff << (8 - bits % 8));
        if ((want[bits / 8] & mask) != (have[bits / 8] & mask))
            return 0;
    }
    return 1;
}

const char *sv_addr_client(const char *remote_addr, const char *forwarded, const char *trusted,
                           char *buf, size_t len)
{
    if (remote_addr == NULL)
        return "";
    if (forwarded == NULL || trusted == NULL || trusted[0] == '\0' ||
        !sv_addr_allowed(trusted, remote_addr))
        return remote_addr;
    /* Right to left: each hop appended the address it saw. */
    const char *end = forwarded + strlen(forwarded);
    const char *found = NULL;
    size_t found_len = 0;
    while (end > forwarded) {
        const char *start = end;
        while (start > forwarded && start[-1] != ',')
            start--;
        const char *a = start, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        char one[64];
        size_t n = (size_t)(b - a);
        if (n == 0 || n >= sizeof(one))
            break;
        memcpy(one, a, n);
        one[n] = '\0';
        if (!sv_addr_is_ip(one))
            break;
        found = a;
        found_len = n;
        if (!sv_addr_allowed(trusted, one))
            break;
        end = start > forwarded ? start - 1 : forwarded;
    }
    if (found == NULL || found_len >= len)
        return remote_addr;
    memcpy(buf, found, found_len);
    buf[found_len] = '\0';
    return buf;
}

const char *sv_addr_rate_key(const char *addr, char *out, size_t len)
{
    unsigned char a[16];

    if (addr != NULL && inet_pton(AF_INET, addr, a) == 1) {
        snprintf(out, len, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
        return out;
    }
    if (addr != NULL && inet_pton(AF_INET6, addr, a) == 1) {
        static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (memcmp(a, mapped, sizeof(mapped)) == 0)
            snprintf(out, len, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
        else
            snprintf(out, len, "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64", a[0], a[1], a[2], a[3],
                     a[4], a[5], a[6], a[7]);
        return out;
    }
    snprintf(out, len, "-");
    return out;
}

int sv_addr_allowed(const char *allow, const char *addr)
{
    char entry[64];
    if (allow == NULL || addr == NULL || *addr == '\0')
        return 0;
    const char *p = allow;
    while (*p) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ", \t");
        if (len > 0 && len < sizeof(entry)) {
            memcpy(entry, p, len);
            entry[len] = '\0';
            if (sv_addr_cidr_match(entry, addr))
                return 1;
        }
        p += len;
    }
    return 0;
}
