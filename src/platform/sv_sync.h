/* Reading a creator's content from a platform's API, for the sync job:
 * YouTube Data API v3 (sv_sync_youtube.c), the Instagram Graph API
 * (sv_sync_instagram.c) and the TikTok Display API v2
 * (sv_sync_tiktok.c), each paging through the account's whole listing
 * with the platform's documented requests and answers, and handing each
 * page to the caller as normalised items.
 *
 * An item is a JSON object whose members are handle_content's columns:
 *   platform_content_id (string, always), content_type (one of the
 *   column's values), title, description, content_url, thumbnail_url,
 *   published_at (RFC 3339 text), tags (array of strings),
 *   duration_seconds, view_count, like_count, comment_count (integers).
 * A member the platform did not give is null (unknown, not zero).
 *
 * All HTTP goes through sv_http_client: http_timeout per exchange, 429
 * and 5xx (and the platforms' own "slow down" signals) retried honouring
 * Retry-After, until the run's deadline. A token the platform rejects
 * (YouTube and TikTok: 401; Instagram: OAuth error 190) is refreshed
 * through the caller's token callback and the call is made once more.
 * Nothing here touches the database: the caller writes the pages. */
#ifndef SV_SYNC_H
#define SV_SYNC_H

#include <stddef.h>

#include <json-c/json.h>

#include "core/sv_config.h"

typedef struct sv_sync_run {
    const sv_config *cfg;
    const char      *platform;      /* "youtube", "instagram", "tiktok" */
    /* The handle's account id on the platform (account_handles.
     * platform_user_id), or NULL. YouTube refuses to sync another
     * channel into the handle; Instagram lists this account's media. */
    const char      *account_id;
    long long        deadline_ms;   /* monotonic; no call starts after it */
    int              max_pages;     /* listing pages read at most */
    /* A usable access token (NUL-terminated, owned by the caller and
     * valid until the next call), or NULL with why. rejected is NULL the
     * first time, then the token the platform just refused. */
    const char    *(*token)(void *arg, const char *rejected, char *why, size_t whylen);
    /* One page of items (a JSON array, borrowed): SV_OK, or SV_ERROR
     * with why, which ends the sync. */
    int            (*page)(void *arg, json_object *items, char *why, size_t whylen);
    void            *arg;

    /* Filled by sv_sync_fetch: */
    int              pages;         /* listing pages read */
    int              calls;         /* HTTP exchanges, retries included */
    int              refreshed;     /* the token was refreshed after a rejection */
    int              complete;      /* the whole listing was read */
    const char      *stopped;       /* why a listing is not complete: "page_limit", "deadline" */
    char             account[128];  /* the account's id, when the platform said it */
} sv_sync_run;

/* 1 when platform has an adapter. */
int sv_sync_supported(const char *platform);

/* Pages through run->platform's listing, calling run->page for each page
 * of items. SV_OK when the listing ended (run->complete) or stopped at the
 * page limit or deadline (run->stopped); SV_ERROR with why (a sentence
 * naming the platform and its answer, never a token) when a call failed
 * for good, an answer was not what the API documents, or run->page or
 * run->token failed. Pages already handed over stay handed over. */
int sv_sync_fetch(sv_sync_run *run, char *why, size_t whylen);

/* Of the ids (a JSON array of strings) the listing did not show, the
 * ones the platform still has for this account, as a new JSON array in
 * *kept (caller puts): TikTok's list shows public videos only, so a video
 * made private vanishes from it; /video/query/ (20 ids a call) says
 * whether it still exists. YouTube's uploads playlist and Instagram's
 * media list everything the account has: for them *kept is empty. SV_OK,
 * or SV_ERROR with why (then nothing must be deleted). */
int sv_sync_confirm(sv_sync_run *run, json_object *ids, json_object **kept, char *why, size_t whylen);

#endif
