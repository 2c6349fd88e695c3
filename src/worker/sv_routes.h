/* The server's one route table. */
#ifndef SV_ROUTES_H
#define SV_ROUTES_H

#include <stddef.h>

#include "http/sv_route.h"

extern const sv_route sv_routes[];
extern const size_t sv_routes_count;

#endif
