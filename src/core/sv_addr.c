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

int sv_addr_key(const char *addr, char *out, size_t size)
{
    unsigned char a[sizeof(struct in6_addr)];
    char text[INET6_ADDRSTRLEN];

    if (addr == NULL || size < SV_ADDR_KEY_MAX)
        return 0;
    if (inet_pton(AF_INET, addr, a) == 1)
        return inet_ntop(AF_INET, a, out, (socklen_t)size) != NULL;
    if (inet_pton(AF_INET6, addr, a) != 1)
        return 0;
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (memcmp(a, mapped, sizeof(mapped)) == 0)
        return inet_ntop(AF_INET, a + 12, out, (socklen_t)size) != NULL;
    memset(a + 8, 0, 8);
    if (inet_ntop(AF_INET6, a, text, sizeof(text)) == NULL)
        return 0;
    snprintf(out, size, "%s/64", text);
    return 1;
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
