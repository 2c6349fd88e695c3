/* Search-engine indexing submission with IndexNow (indexnow.org): one
 * JSON POST of up to 10,000 URLs of one host, proven by a key file the
 * server itself serves (GET /<indexnow_key>.txt). */
#ifndef SV_INDEXNOW_H
#define SV_INDEXNOW_H

#include <stddef.h>

#include <json-c/json.h>

#include "core/sv_arena.h"
#include "core/sv_config.h"

#define SV_INDEXNOW_BATCH 10000

/* 1 when key is a valid IndexNow key: 8 to 128 of [a-zA-Z0-9-]. */
int sv_indexnow_key_valid(const char *key);

/* The public URL of a content id: indexnow_url_template with "{id}"
 * replaced (malloc'd, caller frees), or NULL. */
char *sv_indexnow_url(const sv_config *cfg, const char *content_id);

/* Submits urls (n of them, all on the template's host) and returns, in
 * *results, one {"url","status","outcome"} per URL: the engine answers
 * per request, so each URL carries its batch's answer ("submitted" for
 * 200, "accepted" for 202, else "failed: <reason>"). SV_OK when every
 * batch was taken, SV_ERROR (why filled) when any was not; *results is
 * filled either way (caller puts). */
int sv_indexnow_submit(const sv_config *cfg, sv_arena *arena, char *const *urls, size_t n,
                       json_object **results, char *why, size_t whylen);

#endif
