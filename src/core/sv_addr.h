/* Client addresses: what REMOTE_ADDR may be, and matching it against
 * address lists (status_allow). */
#ifndef SV_ADDR_H
#define SV_ADDR_H

#include <stddef.h>

/* 1 when s is a textual IPv4 or IPv6 address. */
int sv_addr_is_ip(const char *s);

/* 1 when addr (textual IPv4/IPv6) matches one entry of allow, a list of
 * addresses and CIDR ranges separated by commas or spaces. */
int sv_addr_allowed(const char *allow, const char *addr);

/* The client's address: remote_addr, unless remote_addr is one of the
 * trusted proxies (an address list as above) and forwarded (the value of
 * the configured real_ip_header, e.g. X-Forwarded-For: "client, proxy1,
 * proxy2") is given; then the rightmost address of forwarded that is not
 * a trusted proxy (nginx's real_ip_recursive), or its leftmost when all
 * are trusted. Entries that are not IP addresses end the search. Returns
 * remote_addr or a copy in buf (size len). */
const char *sv_addr_client(const char *remote_addr, const char *forwarded, const char *trusted,
                           char *buf, size_t len);

/* The rate limiter's key for addr: an IPv4 address as is, an IPv6
 * address by its /64 (one customer's network; an IPv4-mapped address as
 * IPv4), anything else "-". Written to out (size len, 48 is enough). */
const char *sv_addr_rate_key(const char *addr, char *out, size_t len);

#endif
