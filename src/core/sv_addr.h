/* Client addresses: what REMOTE_ADDR may be, and matching it against
 * address lists (status_allow). */
#ifndef SV_ADDR_H
#define SV_ADDR_H

#include <stddef.h>

/* 1 when s is a textual IPv4 or IPv6 address. */
int sv_addr_is_ip(const char *s);

/* Longest key sv_addr_key writes, with its NUL. */
#define SV_ADDR_KEY_MAX 64

/* The key a client address is counted by (the login and signup
 * throttles): an IPv4 address as itself; an IPv6 address as its /64
 * ("2001:db8:1:2::/64"), which one client (a home line, a phone, a
 * virtual machine) usually has whole and can rotate through; an
 * IPv4-mapped IPv6 address as the IPv4 address. Writes the key into
 * out[0..size) and returns 1, or returns 0 when addr is not an address. */
int sv_addr_key(const char *addr, char *out, size_t size);

/* 1 when addr (textual IPv4/IPv6) matches one entry of allow, a list of
 * addresses and CIDR ranges separated by commas or spaces. */
int sv_addr_allowed(const char *allow, const char *addr);

#endif
