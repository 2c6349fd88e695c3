/* Operator endpoints: liveness with database health, and the pool's
 * status page (php-fpm's fields). */
#ifndef SV_OPS_H
#define SV_OPS_H

#include "http/sv_ctx.h"

int sv_ops_healthz(sv_ctx *ctx);
/* Only from the addresses of status_allow. */
int sv_ops_status(sv_ctx *ctx);

#endif
