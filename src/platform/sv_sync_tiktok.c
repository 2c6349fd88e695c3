/* TikTok Display API v2: POST /v2/video/list/?fields=… with
 * {"max_count":20[,"cursor":N]} while data.has_more, the cursor being the
 * previous answer's data.cursor (a time in ms). Every answer carries
 * {"error":{"code":"ok"|…}}: anything but "ok" is a failure even with
 * HTTP 200. A page may hold fewer than max_count videos while has_more
 * is true: paging goes on. The list shows public videos only: before the
 * job soft-deletes what it did not show, /video/query/ says which of
 * those videos the account still has (made private, say), and they stay.
 * cover_image_url is signed and expires after
 * 6 hours (sql/041_sync.sql does not count a new signature as an edit). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/sv_clock.h"
#include "core/sv_err.h"
#include "platform/sv_sync_common.h"

#define SV_TT_FIELDS \
    "id,title,video_description,duration,cover_image_url,share_url,embed_link,create_time,view_count," \
    "like_count,comment_count,share_count"

static const char *sv_tt_code(json_object *body)
{
    const char *c = sv_sync_str(sv_sync_get(body, "error"), "code");
    return c ? c : "";
}

/* 401 access_token_invalid (or _expired); scope_not_authorized is the
 * user's consent, which a refresh does not widen. */
static int sv_tt_token_rejected(const sv_http_result *res, json_object *body)
{
    return res->status == 401 && strcmp(sv_tt_code(body), "scope_not_authorized") != 0;
}

static int sv_tt_transient(const sv_http_result *res, json_object *body)
{
    (void)res;
    return strcmp(sv_tt_code(body), "rate_limit_exceeded") == 0 ||
           strcmp(sv_tt_code(body), "internal_error") == 0;
}

static const sv_sync_api sv_tt_api = { "TikTok", sv_tt_token_rejected, sv_tt_transient };

static json_object *sv_tt_item(sv_arena *arena, json_object *v)
{
    const char *id = sv_sync_str(v, "id");
    if (id == NULL || *id == '\0')
        return NULL;
    json_object *item = sv_sync_item(id, "video");
    const char *title = sv_sync_str(v, "title"), *desc = sv_sync_str(v, "video_description");
    sv_sync_set_str(item, "title", title && *title ? title : sv_sync_first_line(arena, desc, 100));
    sv_sync_set_str(item, "description", desc);
    json_object_object_add(item, "tags", sv_sync_hashtags(desc));
    sv_sync_set_str(item, "content_url", sv_sync_str(v, "share_url"));
    sv_sync_set_str(item, "thumbnail_url", sv_sync_str(v, "cover_image_url"));
    long long created = sv_sync_count(v, "create_time");
    if (created >= 0) {
        time_t t = (time_t)created;
        struct tm tm;
        char buf[32];
        if (gmtime_r(&t, &tm) != NULL && strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
            sv_sync_set_str(item, "published_at", buf);
    }
    sv_sync_set_int(item, "duration_seconds", sv_sync_count(v, "duration"));
    sv_sync_set_int(item, "view_count", sv_sync_count(v, "view_count"));
    sv_sync_set_int(item, "like_count", sv_sync_count(v, "like_count"));
    sv_sync_set_int(item, "comment_count", sv_sync_count(v, "comment_count"));
    return item;
}

int sv_sync_tiktok(sv_sync_run *run, sv_arena *arena, char *why, size_t whylen)
{
    long long cursor = -1;
    for (;;) {
        if (!sv_sync_may_continue(run))
            return SV_OK;
        sv_arena_reset(arena);
        char *url = sv_arena_printf(arena, "%s/video/list/?fields=%s", run->cfg->tiktok_api_url, SV_TT_FIELDS);
        char *body = cursor >= 0 ? sv_arena_printf(arena, "{\"max_count\":%d,\"cursor\":%lld}", SV_SYNC_TIKTOK_PAGE, cursor)
                                 : sv_arena_printf(arena, "{\"max_count\":%d}", SV_SYNC_TIKTOK_PAGE);
        json_object *answer;
        if (sv_sync_call(run, &sv_tt_api, arena, "POST", url, body, &answer, why, whylen) != SV_OK)
            return SV_ERROR;
        run->pages++;
        if (strcmp(sv_tt_code(answer), "ok") != 0) {
            snprintf(why, whylen, "TikTok answered error %.60s: %.200s", sv_tt_code(answer),
                     sv_sync_str(sv_sync_get(answer, "error"), "message")
                         ? sv_sync_str(sv_sync_get(answer, "error"), "message") : "");
            json_object_put(answer);
            return SV_ERROR;
        }
        json_object *data = sv_sync_get(answer, "data");
        json_object *videos = sv_sync_get(data, "videos");
        json_object *more_o = sv_sync_get(data, "has_more");
        if (data == NULL || (videos != NULL && !json_object_is_type(videos, json_type_array))) {
            json_object_put(answer);
            snprintf(why, whylen, "TikTok's video list answer has no data.videos array");
            return SV_ERROR;
        }
        json_object *page = json_object_new_array();
        for (size_t i = 0; videos && i < json_object_array_length(videos); i++) {
            json_object *item = sv_tt_item(arena, json_object_array_get_idx(videos, i));
            if (item != NULL)
                json_object_array_add(page, item);
        }
        int more = more_o != NULL && json_object_is_type(more_o, json_type_boolean) && json_object_get_boolean(more_o);
        long long next = sv_sync_count(data, "cursor");
        json_object_put(answer);
        if (more && (next < 0 || next == cursor)) {
            json_object_put(page);
            snprintf(why, whylen, "TikTok announced more videos without a new cursor");
            return SV_ERROR;
        }
        if (sv_sync_deliver(run, page, !more, why, whylen) != SV_OK)
            return SV_ERROR;
        if (!more)
            return SV_OK;
        cursor = next;
    }
}

int sv_sync_tiktok_confirm(sv_sync_run *run, sv_arena *arena, json_object *ids, json_object *kept, char *why,
                           size_t whylen)
{
    size_t n = json_object_array_length(ids);
    for (size_t from = 0; from < n; from += SV_SYNC_TIKTOK_PAGE) {
        if (sv_clock_mono_ms() >= run->deadline_ms) {
            snprintf(why, whylen, "the sync ran out of time checking TikTok videos it no longer lists");
            return SV_ERROR;
        }
        sv_arena_reset(arena);
        json_object *batch = json_object_new_array();
        for (size_t i = from; i < n && i < from + SV_SYNC_TIKTOK_PAGE; i++)
            json_object_array_add(batch, json_object_get(json_object_array_get_idx(ids, i)));
        json_object *filters = json_object_new_object(), *req = json_object_new_object();
        json_object_object_add(filters, "video_ids", batch);
        json_object_object_add(req, "filters", filters);
        char *url = sv_arena_printf(arena, "%s/video/query/?fields=id", run->cfg->tiktok_api_url);
        json_object *answer;
        int rc = sv_sync_call(run, &sv_tt_api, arena, "POST", url,
                              json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN), &answer, why, whylen);
        json_object_put(req);
        if (rc != SV_OK)
            return SV_ERROR;
        json_object *videos = sv_sync_get(sv_sync_get(answer, "data"), "videos");
        if (strcmp(sv_tt_code(answer), "ok") != 0 || (videos != NULL && !json_object_is_type(videos, json_type_array))) {
            snprintf(why, whylen, "TikTok's video query answer is not a list of videos (error %.60s)", sv_tt_code(answer));
            json_object_put(answer);
            return SV_ERROR;
        }
        for (size_t i = 0; videos && i < json_object_array_length(videos); i++) {
            const char *id = sv_sync_str(json_object_array_get_idx(videos, i), "id");
            if (id != NULL)
                json_object_array_add(kept, json_object_new_string(id));
        }
        json_object_put(answer);
    }
    return SV_OK;
}
