/* The headers that choose how PostgREST answers: Prefer (return=,
 * count=, resolution=, missing=) and Accept (content negotiation). */
#include "rest/sv_rest_negotiate.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- Prefer ------------------------------------------------------------------ */

void sv_rq_prefer(const char *h, sv_prefer *pf)
{
    pf->return_mode = -1;
    pf->count = 0;
    pf->resolution = 0;
    pf->missing_default = 0;
    if (h == NULL)
        return;
    const char *p = h;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        size_t len = (size_t)(e - p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
#define SV_TOKEN(s) (len == sizeof(s) - 1 && strncmp(p, s, len) == 0)
        if (SV_TOKEN("return=minimal"))
            pf->return_mode = SV_REST_RETURN_MINIMAL;
        else if (SV_TOKEN("return=representation"))
            pf->return_mode = SV_REST_RETURN_REPRESENTATION;
        else if (SV_TOKEN("return=headers-only"))
            pf->return_mode = SV_REST_RETURN_HEADERS;
        else if (SV_TOKEN("count=exact") || SV_TOKEN("count=planned") || SV_TOKEN("count=estimated"))
            pf->count = 1;
        else if (SV_TOKEN("resolution=merge-duplicates"))
            pf->resolution = 1;
        else if (SV_TOKEN("resolution=ignore-duplicates"))
            pf->resolution = 2;
        else if (SV_TOKEN("missing=default"))
            pf->missing_default = 1;
#undef SV_TOKEN
        p = e;
    }
}

/* --- content negotiation ---------------------------------------------------------- */

/* One media range as PostgREST reads it: spaces dropped, ";q=" and all
 * after it cut off (into *q, 1 when absent or unreadable; a negative q
 * is read as it is).
 * SV_REST_MEDIA_NONE for a type this server does not make. Of a range
 * longer than any of those with their parameters, only the first 255
 * bytes are read: its type decides, and it is not nulls=stripped. */
static sv_rest_media sv_rq_media_range(const char *item, size_t len, double *q, int *specific)
{
    char range[256];
    size_t n = 0;
    int cut = 0;
    for (size_t i = 0; i < len && !cut; i++) {
        if (item[i] == ' ' || item[i] == '\t')
            continue;
        if (n + 1 < sizeof(range))
            range[n++] = item[i];
        else
            cut = 1;
    }
    range[n] = '\0';
    *q = 1.0;
    char *qp = strstr(range, ";q=");
    if (qp == NULL)
        qp = strstr(range, ";Q=");
    if (qp != NULL) {
        /* Haskell's reads, as PostgREST's parser (wai-extra) uses it: a
         * number, negative ones too (ranked below q=0); else 1. */
        const char *num = qp + 3 + (qp[3] == '-');
        if (*num >= '0' && *num <= '9')
            *q = strtod(qp + 3, NULL);
        *qp = '\0';
    }
    *specific = 0;
    for (const char *c = range; *c != '\0'; c++)
        *specific += *c == ';' ? 1 : *c == '*' ? -1 : 0;

    size_t essence = strcspn(range, ";");
    const char *params = range + essence;
    int stripped = !cut && strcasecmp(params, ";nulls=stripped") == 0;
#define SV_IS(type) (essence == sizeof(type) - 1 && strncasecmp(range, type, essence) == 0)
    if (SV_IS("application/json") || SV_IS("*/*") || SV_IS("application/*"))
        return SV_REST_MEDIA_JSON;
    if (SV_IS("application/vnd.pgrst.array+json") || SV_IS("application/vnd.pgrst.array"))
        return stripped ? SV_REST_MEDIA_JSON_STRIPPED : SV_REST_MEDIA_JSON;
    if (SV_IS("application/vnd.pgrst.object+json") || SV_IS("application/vnd.pgrst.object"))
        return stripped ? SV_REST_MEDIA_OBJECT_STRIPPED : SV_REST_MEDIA_OBJECT;
#undef SV_IS
    return SV_REST_MEDIA_NONE;
}

sv_rest_media sv_rest_negotiate(const char *accept)
{
    if (accept == NULL)
        return SV_REST_MEDIA_JSON;
    sv_rest_media best = SV_REST_MEDIA_NONE;
    double best_q = 0;
    int best_specific = 0, ranges = 0;
    /* PostgREST sorts the ranges (stably) and takes the first it makes:
     * the same as the first of the best-ranked it makes. */
    for (const char *item = accept;;) {
        size_t len = strcspn(item, ",");
        if (strspn(item, " \t") < len) {
            double q;
            int specific;
            sv_rest_media m = sv_rq_media_range(item, len, &q, &specific);
            ranges++;
            if (m != SV_REST_MEDIA_NONE &&
                (best == SV_REST_MEDIA_NONE || q > best_q || (q == best_q && specific > best_specific))) {
                best = m;
                best_q = q;
                best_specific = specific;
            }
        }
        if (item[len] == '\0')
            break;
        item += len + 1;
    }
    return ranges == 0 ? SV_REST_MEDIA_JSON : best;
}

const char *sv_rest_media_content_type(sv_rest_media media)
{
    switch (media) {
    case SV_REST_MEDIA_JSON_STRIPPED:
        return "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8";
    case SV_REST_MEDIA_OBJECT:
        return "application/vnd.pgrst.object+json; charset=utf-8";
    case SV_REST_MEDIA_OBJECT_STRIPPED:
        return "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8";
    default:
        return NULL;
    }
}

/* The representation a table request negotiated; nothing made (already
 * refused with 406 by the handler) counts as JSON. */
void sv_rq_negotiated(const sv_rest_input *in, sv_rest_plan *plan)
{
    plan->media = sv_rest_negotiate(in->accept);
    if (plan->media == SV_REST_MEDIA_NONE)
        plan->media = SV_REST_MEDIA_JSON;
    plan->single = plan->media == SV_REST_MEDIA_OBJECT || plan->media == SV_REST_MEDIA_OBJECT_STRIPPED;
    plan->strip_nulls = plan->media == SV_REST_MEDIA_JSON_STRIPPED || plan->media == SV_REST_MEDIA_OBJECT_STRIPPED;
}

