/* Client addresses: what REMOTE_ADDR may be, and matching it against
 * address lists (status_allow). */
#ifndef SV_ADDR_H
#define SV_ADDR_H

/* 1 when s is a textual IPv4 or IPv6 address. */
int sv_addr_is_ip(const char *s);

/* 1 when addr (textual IPv4/IPv6) matches one entry of allow, a list of
 * addresses and CIDR ranges separated by commas or spaces. */
int sv_addr_allowed(const char *allow, const char *addr);

#endif
