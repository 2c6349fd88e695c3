/* Instagram Graph API (Instagram Login): the account's media with cursor
 * paging, GET /{ig-user-id}/media?fields=…&limit=50[&after=CURSOR], the
 * account being the handle's platform user id or else /me's user_id.
 * paging.next is an absolute URL carrying the token and naming the real
 * host: it is never followed; the next request is rebuilt from the
 * configured base and cursors.after (and the answer, which holds the
 * token in that URL, is wiped when released). Errors are classified by the body's
 * error.code, whatever the HTTP status: 190 is a rejected token (sent
 * with 400, not 401), 4/17/32/613/80002 and 1/2 say "try again later". */
#include <stdio.h>
#include <string.h>

#include "core/sv_err.h"
#include "core/sv_json.h"
#include "platform/sv_http_client.h"
#include "platform/sv_sync_common.h"

#define SV_IG_FIELDS \
    "id,caption,media_type,media_product_type,media_url,permalink,thumbnail_url,timestamp,like_count,comments_count"

static long long sv_ig_code(json_object *body)
{
    json_object *code = sv_sync_get(sv_sync_get(body, "error"), "code");
    return code && json_object_is_type(code, json_type_int) ? (long long)json_object_get_int64(code) : -1;
}

static int sv_ig_token_rejected(const sv_http_result *res, json_object *body)
{
    (void)res;
    return sv_ig_code(body) == 190;
}

static int sv_ig_transient(const sv_http_result *res, json_object *body)
{
    (void)res;
    long long c = sv_ig_code(body);
    json_object *t = sv_sync_get(sv_sync_get(body, "error"), "is_transient");
    return c == 1 || c == 2 || c == 4 || c == 17 || c == 32 || c == 613 || c == 80002 ||
           (t != NULL && json_object_is_type(t, json_type_boolean) && json_object_get_boolean(t));
}

static const sv_sync_api sv_ig_api = { "Instagram", sv_ig_token_rejected, sv_ig_transient };

/* Instagram writes "+0000" for the offset; PostgreSQL reads that too,
 * but an RFC 3339 "Z" is what the other platforms give: normalise. */
static char *sv_ig_time(sv_arena *arena, const char *ts)
{
    if (ts == NULL)
        return NULL;
    size_t n = strlen(ts);
    if (n > 5 && strcmp(ts + n - 5, "+0000") == 0)
        return sv_arena_printf(arena, "%.*sZ", (int)(n - 5), ts);
    return sv_arena_strdup(arena, ts);
}

static json_object *sv_ig_item(sv_arena *arena, json_object *m)
{
    const char *id = sv_sync_str(m, "id");
    if (id == NULL || *id == '\0')
        return NULL;
    const char *type = sv_sync_str(m, "media_type"), *product = sv_sync_str(m, "media_product_type");
    const char *ct = product && strcmp(product, "REELS") == 0 ? "reel"
                   : product && strcmp(product, "STORY") == 0 ? "story"
                   : type && strcmp(type, "VIDEO") == 0 ? "video"
                   : type && strcmp(type, "CAROUSEL_ALBUM") == 0 ? "carousel"
                   : type && strcmp(type, "IMAGE") == 0 ? "image" : "post";
    json_object *item = sv_sync_item(id, ct);
    const char *caption = sv_sync_str(m, "caption");
    sv_sync_set_str(item, "title", sv_sync_first_line(arena, caption, 100));
    sv_sync_set_str(item, "description", caption);
    json_object_object_add(item, "tags", sv_sync_hashtags(caption));
    sv_sync_set_str(item, "content_url", sv_sync_str(m, "permalink"));
    /* thumbnail_url is a video's cover; an image is its own thumbnail */
    const char *thumb = sv_sync_str(m, "thumbnail_url");
    sv_sync_set_str(item, "thumbnail_url", thumb ? thumb : sv_sync_str(m, "media_url"));
    sv_sync_set_str(item, "published_at", sv_ig_time(arena, sv_sync_str(m, "timestamp")));
    sv_sync_set_int(item, "like_count", sv_sync_count(m, "like_count"));
    sv_sync_set_int(item, "comment_count", sv_sync_count(m, "comments_count"));
    return item;
}

int sv_sync_instagram(sv_sync_run *run, sv_arena *arena, char *why, size_t whylen)
{
    const char *base = run->cfg->instagram_api_url;
    json_object *answer;

    if (run->account_id != NULL && *run->account_id) {
        snprintf(run->account, sizeof(run->account), "%s", run->account_id);
    } else {
        char *url = sv_arena_printf(arena, "%s/me?fields=user_id,username", base);
        if (sv_sync_call(run, &sv_ig_api, arena, NULL, url, NULL, &answer, why, whylen) != SV_OK)
            return SV_ERROR;
        /* flat, as the API answers; the get-started guide shows it in a
         * data array */
        json_object *me = answer, *data = sv_sync_get(answer, "data");
        if (data && json_object_is_type(data, json_type_array) && json_object_array_length(data) > 0)
            me = json_object_array_get_idx(data, 0);
        const char *uid = sv_sync_str(me, "user_id");
        if (uid == NULL)
            uid = sv_sync_str(me, "id");
        if (uid == NULL || *uid == '\0' || strlen(uid) >= sizeof(run->account)) {
            json_object_put(answer);
            snprintf(why, whylen, "Instagram's /me answer names no account");
            return SV_ERROR;
        }
        snprintf(run->account, sizeof(run->account), "%s", uid);
        json_object_put(answer);
    }

    char cursor[1024] = "";
    for (;;) {
        if (!sv_sync_may_continue(run))
            return SV_OK;
        sv_arena_reset(arena);
        char *url = sv_arena_printf(arena, "%s/%s/media?fields=%s&limit=%d%s%s", base,
                                    sv_http_client_escape(arena, run->account), SV_IG_FIELDS,
                                    SV_SYNC_INSTAGRAM_PAGE, cursor[0] ? "&after=" : "",
                                    cursor[0] ? sv_http_client_escape(arena, cursor) : "");
        if (sv_sync_call(run, &sv_ig_api, arena, NULL, url, NULL, &answer, why, whylen) != SV_OK)
            return SV_ERROR;
        run->pages++;
        json_object *data = sv_sync_get(answer, "data");
        if (data == NULL || !json_object_is_type(data, json_type_array)) {
            sv_json_put_wiped(answer);
            snprintf(why, whylen, "Instagram's media answer has no data array");
            return SV_ERROR;
        }
        json_object *page = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(data); i++) {
            json_object *item = sv_ig_item(arena, json_object_array_get_idx(data, i));
            if (item != NULL)
                json_object_array_add(page, item);
        }
        json_object *paging = sv_sync_get(answer, "paging");
        const char *next = sv_sync_str(paging, "next");
        const char *after = sv_sync_str(sv_sync_get(paging, "cursors"), "after");
        int more = next != NULL && *next != '\0';
        if (more && (after == NULL || *after == '\0' || strlen(after) >= sizeof(cursor) ||
                     strcmp(after, cursor) == 0)) {
            sv_json_put_wiped(answer);
            json_object_put(page);
            snprintf(why, whylen, "Instagram announced a next page without a new cursor");
            return SV_ERROR;
        }
        if (more)
            snprintf(cursor, sizeof(cursor), "%s", after);
        sv_json_put_wiped(answer);
        if (sv_sync_deliver(run, page, !more, why, whylen) != SV_OK)
            return SV_ERROR;
        if (!more)
            return SV_OK;
    }
}
