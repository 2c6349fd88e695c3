/* YouTube Data API v3: channels.list (mine=true) for the uploads
 * playlist, playlistItems.list pages of 50 (nextPageToken), and
 * videos.list (snippet, statistics, contentDetails) for each page's ids.
 * An upload missing from videos.list is gone (deleted, or no longer the
 * channel's), so it is not handed over. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sv_err.h"
#include "platform/sv_http_client.h"
#include "platform/sv_sync_common.h"

/* The first errors[].reason of a Google error body, or "". */
static const char *sv_yt_reason(json_object *body)
{
    json_object *errors = sv_sync_get(sv_sync_get(body, "error"), "errors");
    const char *r = errors && json_object_is_type(errors, json_type_array) && json_object_array_length(errors) > 0
                        ? sv_sync_str(json_object_array_get_idx(errors, 0), "reason")
                        : NULL;
    return r ? r : "";
}

/* 401 authError (an expired or revoked access token); a 401 saying the
 * header is missing, or that the account has no channel, is not cured by
 * a refresh. */
static int sv_yt_token_rejected(const sv_http_result *res, json_object *body)
{
    if (res->status != 401)
        return 0;
    const char *r = sv_yt_reason(body);
    return strcmp(r, "required") != 0 && strcmp(r, "youtubeSignupRequired") != 0;
}

/* The per-100-seconds limits come as 403 (or 429) rateLimitExceeded /
 * userRateLimitExceeded; 403 quotaExceeded (the day's quota) is not. */
static int sv_yt_transient(const sv_http_result *res, json_object *body)
{
    const char *r = sv_yt_reason(body);
    return res->status == 403 &&
           (strcmp(r, "rateLimitExceeded") == 0 || strcmp(r, "userRateLimitExceeded") == 0);
}

static const sv_sync_api sv_yt_api = { "YouTube", sv_yt_token_rejected, sv_yt_transient };

/* ISO 8601 duration (PT4M13S, PT1H2M10S, P1DT2H3M, P0D) in seconds; -1
 * when it is not one. */
static long long sv_yt_duration(const char *s)
{
    if (s == NULL || *s != 'P')
        return -1;
    long long total = 0;
    int in_time = 0, any = 0;
    for (const char *p = s + 1; *p;) {
        if (*p == 'T') {
            in_time = 1;
            p++;
            continue;
        }
        char *end;
        long long n = strtoll(p, &end, 10);
        if (end == p || n < 0)
            return -1;
        switch (*end) {
        case 'D': if (in_time) return -1; total += n * 86400; break;
        case 'H': if (!in_time) return -1; total += n * 3600; break;
        case 'M': if (!in_time) return -1; total += n * 60; break;
        case 'S': if (!in_time) return -1; total += n; break;
        default: return -1;
        }
        any = 1;
        p = end + 1;
    }
    return any && total <= 0x7fffffff ? total : -1;
}

/* The largest thumbnail a video has. */
static const char *sv_yt_thumbnail(json_object *thumbnails)
{
    static const char *const sizes[] = { "maxres", "standard", "high", "medium", "default" };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        const char *url = sv_sync_str(sv_sync_get(thumbnails, sizes[i]), "url");
        if (url != NULL)
            return url;
    }
    return NULL;
}

/* A videos.list item as a normalised item, or NULL when it has no id. */
static json_object *sv_yt_item(sv_arena *arena, json_object *v)
{
    const char *id = sv_sync_str(v, "id");
    if (id == NULL || *id == '\0')
        return NULL;
    json_object *snippet = sv_sync_get(v, "snippet"), *stats = sv_sync_get(v, "statistics");
    const char *live = sv_sync_str(snippet, "liveBroadcastContent");
    json_object *item = sv_sync_item(id, live && (strcmp(live, "live") == 0 || strcmp(live, "upcoming") == 0)
                                             ? "live" : "video");
    sv_sync_set_str(item, "title", sv_sync_str(snippet, "title"));
    sv_sync_set_str(item, "description", sv_sync_str(snippet, "description"));
    sv_sync_set_str(item, "published_at", sv_sync_str(snippet, "publishedAt"));
    sv_sync_set_str(item, "thumbnail_url", sv_yt_thumbnail(sv_sync_get(snippet, "thumbnails")));
    sv_sync_set_str(item, "content_url", sv_arena_printf(arena, "https://www.youtube.com/watch?v=%s",
                                                         sv_http_client_escape(arena, id)));
    json_object *tags = json_object_new_array();
    json_object *t = sv_sync_get(snippet, "tags");   /* absent when the video has none */
    for (size_t i = 0; t && json_object_is_type(t, json_type_array) && i < json_object_array_length(t); i++) {
        json_object *tag = json_object_array_get_idx(t, i);
        if (json_object_is_type(tag, json_type_string))
            json_object_array_add(tags, json_object_get(tag));
    }
    json_object_object_add(item, "tags", tags);
    sv_sync_set_int(item, "duration_seconds",
                    sv_yt_duration(sv_sync_str(sv_sync_get(v, "contentDetails"), "duration")));
    sv_sync_set_int(item, "view_count", sv_sync_count(stats, "viewCount"));
    sv_sync_set_int(item, "like_count", sv_sync_count(stats, "likeCount"));
    sv_sync_set_int(item, "comment_count", sv_sync_count(stats, "commentCount"));
    return item;
}

/* The ids of a playlistItems page, comma-separated (escaped), and how many. */
static char *sv_yt_page_ids(sv_arena *arena, json_object *page, int *n)
{
    json_object *items = sv_sync_get(page, "items");
    sv_buf ids;
    sv_buf_init(&ids, arena, 1024);
    *n = 0;
    for (size_t i = 0; items && json_object_is_type(items, json_type_array) && i < json_object_array_length(items); i++) {
        json_object *it = json_object_array_get_idx(items, i);
        const char *vid = sv_sync_str(sv_sync_get(it, "contentDetails"), "videoId");
        if (vid == NULL)
            vid = sv_sync_str(sv_sync_get(sv_sync_get(it, "snippet"), "resourceId"), "videoId");
        if (vid == NULL || *vid == '\0')
            continue;
        if (*n > 0)
            sv_buf_puts(&ids, ",");
        sv_buf_puts(&ids, sv_http_client_escape(arena, vid));
        (*n)++;
    }
    return ids.data;
}

int sv_sync_youtube(sv_sync_run *run, sv_arena *arena, char *why, size_t whylen)
{
    const char *base = run->cfg->youtube_api_url;
    json_object *answer;

    char *url = sv_arena_printf(arena, "%s/channels?part=contentDetails&mine=true", base);
    if (sv_sync_call(run, &sv_yt_api, arena, NULL, url, NULL, &answer, why, whylen) != SV_OK)
        return SV_ERROR;
    json_object *items = sv_sync_get(answer, "items");
    json_object *channel = items && json_object_is_type(items, json_type_array) && json_object_array_length(items) > 0
                               ? json_object_array_get_idx(items, 0) : NULL;
    const char *channel_id = sv_sync_str(channel, "id");
    const char *uploads = sv_sync_str(sv_sync_get(sv_sync_get(channel, "contentDetails"), "relatedPlaylists"),
                                      "uploads");
    if (channel == NULL || channel_id == NULL || uploads == NULL || *uploads == '\0') {
        json_object_put(answer);
        snprintf(why, whylen, "the connected Google account has no YouTube channel");
        return SV_ERROR;
    }
    snprintf(run->account, sizeof(run->account), "%s", channel_id);
    char playlist[256];
    snprintf(playlist, sizeof(playlist), "%s", uploads);
    json_object_put(answer);
    if (run->account_id != NULL && *run->account_id && strcmp(run->account_id, run->account) != 0) {
        snprintf(why, whylen, "the connected YouTube channel (%.60s) is not this handle's (%.60s)", run->account,
                 run->account_id);
        return SV_ERROR;
    }

    char token[512] = "";
    for (;;) {
        if (!sv_sync_may_continue(run))
            return SV_OK;
        sv_arena_reset(arena);
        url = sv_arena_printf(arena, "%s/playlistItems?part=contentDetails,snippet&playlistId=%s&maxResults=%d%s%s",
                              base, sv_http_client_escape(arena, playlist), SV_SYNC_YOUTUBE_PAGE,
                              token[0] ? "&pageToken=" : "", token[0] ? sv_http_client_escape(arena, token) : "");
        if (sv_sync_call(run, &sv_yt_api, arena, NULL, url, NULL, &answer, why, whylen) != SV_OK)
            return SV_ERROR;
        run->pages++;
        const char *next = sv_sync_str(answer, "nextPageToken");
        if (next != NULL && strlen(next) >= sizeof(token)) {
            json_object_put(answer);
            snprintf(why, whylen, "YouTube answered a page token too long to be one");
            return SV_ERROR;
        }
        snprintf(token, sizeof(token), "%s", next && *next ? next : "");
        int n;
        char *ids = sv_yt_page_ids(arena, answer, &n);
        json_object_put(answer);

        json_object *page = json_object_new_array();
        if (n > 0) {
            url = sv_arena_printf(arena, "%s/videos?part=snippet,statistics,contentDetails&id=%s&maxResults=%d",
                                  base, ids, SV_SYNC_YOUTUBE_PAGE);
            if (sv_sync_call(run, &sv_yt_api, arena, NULL, url, NULL, &answer, why, whylen) != SV_OK) {
                json_object_put(page);
                return SV_ERROR;
            }
            json_object *videos = sv_sync_get(answer, "items");
            for (size_t i = 0; videos && json_object_is_type(videos, json_type_array) &&
                               i < json_object_array_length(videos); i++) {
                json_object *item = sv_yt_item(arena, json_object_array_get_idx(videos, i));
                if (item != NULL)
                    json_object_array_add(page, item);
            }
            json_object_put(answer);
        }
        if (sv_sync_deliver(run, page, token[0] == '\0', why, whylen) != SV_OK)
            return SV_ERROR;
        if (token[0] == '\0')
            return SV_OK;
    }
}
