/* Unit tests of client address handling (src/core/sv_addr.c): the key a
 * client is throttled by (one IPv6 client owns a whole /64 and must not
 * escape a limit by moving inside it), and status_allow matching. */
#include "core/sv_addr.h"
#include "tap.h"

static const char *key(const char *addr)
{
    static char buf[SV_ADDR_KEY_MAX];

    return sv_addr_key(addr, buf, sizeof(buf)) ? buf : NULL;
}

int main(void)
{
    /* IPv4: the address itself, in its one canonical spelling */
    is_str(key("203.0.113.7"), "203.0.113.7", "IPv4 is its own key");
    is_str(key("10.0.0.1"), "10.0.0.1", "another IPv4 address");
    ok(key("010.000.000.001") == NULL, "IPv4 with leading zeros is not an address");

    /* IPv6: the /64 */
    is_str(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64", "IPv6 keyed by its /64");
    is_str(key("2001:db8:1:2::1"), "2001:db8:1:2::/64", "another host of that /64: same key");
    is_str(key("2001:0db8:0001:0002:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64",
           "long spelling, last host of the /64: same key");
    is_str(key("2001:DB8:1:2:a:b:c:d"), "2001:db8:1:2::/64", "upper case: same key");
    is_str(key("2001:db8:1:3::1"), "2001:db8:1:3::/64", "the next /64: another key");
    is_str(key("::1"), "::/64", "loopback");
    is_str(key("fe80::1:2:3:4"), "fe80::/64", "link-local");

    /* IPv4-mapped IPv6: the IPv4 client it is */
    is_str(key("::ffff:203.0.113.7"), "203.0.113.7", "IPv4-mapped IPv6 keyed as IPv4");
    is_str(key("::ffff:cb00:7107"), "203.0.113.7", "the same, in hex");

    /* not addresses */
    ok(key("") == NULL, "empty");
    ok(key(NULL) == NULL, "NULL");
    ok(key("localhost") == NULL, "a name");
    ok(key("2001:db8::/64") == NULL, "a prefix is not an address");
    ok(key("203.0.113.7 ") == NULL, "trailing space");
    char small[8];
    ok(!sv_addr_key("2001:db8:1:2::1", small, sizeof(small)), "too small a buffer: refused, not cut");

    /* status_allow */
    ok(sv_addr_allowed("127.0.0.1, ::1", "127.0.0.1"), "listed address allowed");
    ok(sv_addr_allowed("10.0.0.0/8", "10.1.2.3"), "CIDR range");
    ok(!sv_addr_allowed("10.0.0.0/8", "11.1.2.3"), "outside the range");
    ok(sv_addr_allowed("2001:db8::/32", "2001:db8:ffff::1"), "IPv6 range");
    ok(!sv_addr_allowed("", "127.0.0.1"), "empty list allows nobody");
    ok(sv_addr_is_ip("2001:db8::1") && !sv_addr_is_ip("nope"), "is_ip");

    return tap_done();
}
