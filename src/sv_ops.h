/* Operator endpoints: liveness/database health and the pool status page. */
#ifndef SV_OPS_H
#define SV_OPS_H

#include "sv_http.h"

struct sv_worker;

void sv_ops_healthz(struct sv_worker *w, sv_request *req, sv_response *res);
void sv_ops_status(struct sv_worker *w, sv_request *req, sv_response *res);

/* True when addr (text IPv4/IPv6) matches one entry of allow, a comma or
 * space separated list of addresses and CIDR ranges. */
int sv_ops_addr_allowed(const char *allow, const char *addr);

#endif
