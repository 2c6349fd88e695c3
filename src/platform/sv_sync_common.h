/* What the platform adapters of sv_sync.h share (sv_sync_common.c): the
 * authenticated, retried API call and the helpers that build normalised
 * items. Private to src/platform/sv_sync*.c. */
#ifndef SV_SYNC_COMMON_H
#define SV_SYNC_COMMON_H

#include <stddef.h>

#include <json-c/json.h>

#include "core/sv_arena.h"
#include "platform/sv_http_client.h"
#include "platform/sv_sync.h"

/* Listing page sizes: each API's documented maximum. */
#define SV_SYNC_YOUTUBE_PAGE 50
#define SV_SYNC_INSTAGRAM_PAGE 50
#define SV_SYNC_TIKTOK_PAGE 20

/* Largest answer of one API call (a page of 50 items with descriptions). */
#define SV_SYNC_MAX_ANSWER (4L << 20)

/* How a platform signals what, read from an answer and its parsed body
 * (NULL when the body is not JSON). */
typedef struct sv_sync_api {
    const char *name;                                              /* "YouTube", for messages */
    int (*token_rejected)(const sv_http_result *res, json_object *body);
    int (*transient)(const sv_http_result *res, json_object *body);  /* worth another try */
} sv_sync_api;

/* One call to the platform: method (NULL: GET) on url with a JSON body
 * (or NULL), the token as a Bearer header. Retries what api->transient
 * says (Retry-After honoured) until run->deadline_ms, and when the token
 * is rejected gets a fresh one from run->token and calls once more (once
 * per run). SV_OK with *answer (the parsed 200 body, caller puts), or
 * SV_ERROR with why. The answer's text lives in arena. */
int sv_sync_call(sv_sync_run *run, const sv_sync_api *api, sv_arena *arena, const char *method,
                 const char *url, const char *body, json_object **answer, char *why, size_t whylen);

/* 1 when the run may read another listing page; else 0 with
 * run->stopped set (page limit or deadline). */
int sv_sync_may_continue(sv_sync_run *run);

/* Hands one listing page to run->page and puts it. SV_ERROR when the
 * callback refused it (why says why); else SV_OK, with run->complete set
 * when last says the listing ends with this page. */
int sv_sync_deliver(sv_sync_run *run, json_object *page, int last, char *why, size_t whylen);

/* Members of a parsed answer. */
json_object *sv_sync_get(json_object *o, const char *key);               /* any type, or NULL */
const char *sv_sync_str(json_object *o, const char *key);                /* a string, or NULL */
/* A count given as a JSON integer or a decimal string (YouTube's); -1
 * when absent or not a count. */
long long sv_sync_count(json_object *o, const char *key);

/* A new item with platform_content_id = id and every other member null. */
json_object *sv_sync_item(const char *id, const char *content_type);
void sv_sync_set_str(json_object *item, const char *key, const char *value);   /* NULL: null */
void sv_sync_set_int(json_object *item, const char *key, long long value);     /* < 0: null */
/* The #hashtags of text (without '#', lower-cased ASCII, at most 30), as
 * a JSON array: what Instagram and TikTok have for tags. */
json_object *sv_sync_hashtags(const char *text);
/* The first line of text cut to at most max characters (UTF-8 aware),
 * as a title for platforms that have only a caption; NULL for none. */
char *sv_sync_first_line(sv_arena *arena, const char *text, size_t max);

/* The adapters. */
int sv_sync_youtube(sv_sync_run *run, sv_arena *arena, char *why, size_t whylen);
int sv_sync_instagram(sv_sync_run *run, sv_arena *arena, char *why, size_t whylen);
int sv_sync_tiktok(sv_sync_run *run, sv_arena *arena, char *why, size_t whylen);
int sv_sync_tiktok_confirm(sv_sync_run *run, sv_arena *arena, json_object *ids, json_object *kept, char *why,
                           size_t whylen);

#endif
