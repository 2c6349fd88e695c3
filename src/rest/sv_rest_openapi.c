/* GET /rest/v1/: PostgREST's OpenAPI (Swagger 2.0) description of what
 * the schema cache exposes. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "rest/sv_rest.h"

/* --- OpenAPI --------------------------------------------------------------------- */

/* Swagger 2.0 schema of a PostgreSQL type. */
static json_object *sv_rest_openapi_type(const char *pgtype)
{
    json_object *o = json_object_new_object();
    size_t len = strlen(pgtype);
    if (len > 2 && strcmp(pgtype + len - 2, "[]") == 0) {
        char elem[128];
        snprintf(elem, sizeof(elem), "%.*s", (int)(len - 2), pgtype);
        json_object_object_add(o, "type", json_object_new_string("array"));
        json_object_object_add(o, "items", sv_rest_openapi_type(elem));
        json_object_object_add(o, "format", json_object_new_string(pgtype));
        return o;
    }
    const char *type = "string", *format = pgtype;
    if (strcmp(pgtype, "integer") == 0 || strcmp(pgtype, "smallint") == 0 || strcmp(pgtype, "bigint") == 0)
        type = "integer";
    else if (strcmp(pgtype, "numeric") == 0 || strcmp(pgtype, "real") == 0 ||
             strcmp(pgtype, "double precision") == 0)
        type = "number";
    else if (strcmp(pgtype, "boolean") == 0)
        type = "boolean";
    else if (strcmp(pgtype, "json") == 0 || strcmp(pgtype, "jsonb") == 0)
        type = NULL;
    if (type)
        json_object_object_add(o, "type", json_object_new_string(type));
    json_object_object_add(o, "format", json_object_new_string(format));
    return o;
}

static json_object *sv_rest_openapi_param_ref(const char *name)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "$ref",
                           json_object_new_string(name));
    return o;
}

static json_object *sv_rest_openapi_op(const char *summary, const char *const *refs, size_t nrefs,
                                       const char *ok_status, const char *ok_desc)
{
    json_object *op = json_object_new_object();
    json_object_object_add(op, "summary", json_object_new_string(summary));
    json_object *params = json_object_new_array();
    for (size_t i = 0; i < nrefs; i++)
        json_object_array_add(params, sv_rest_openapi_param_ref(refs[i]));
    json_object_object_add(op, "parameters", params);
    json_object *responses = json_object_new_object();
    json_object *ok = json_object_new_object();
    json_object_object_add(ok, "description", json_object_new_string(ok_desc));
    json_object_object_add(responses, ok_status, ok);
    json_object_object_add(op, "responses", responses);
    return op;
}

static json_object *sv_rest_openapi_simple_param(const char *name, const char *in, const char *type,
                                                 const char *desc)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "name", json_object_new_string(name));
    json_object_object_add(p, "in", json_object_new_string(in));
    json_object_object_add(p, "required", json_object_new_boolean(0));
    if (type)
        json_object_object_add(p, "type", json_object_new_string(type));
    json_object_object_add(p, "description", json_object_new_string(desc));
    return p;
}

int sv_rest_openapi(sv_ctx *ctx)
{
    sv_request *req = ctx->req;
    const sv_rest_schema *cache = &ctx->rest_cache->schema;

    if (sv_rest_profile(ctx, 0) != SV_OK || sv_rest_schema_ready(ctx) != SV_OK)
        return SV_ERROR;

    json_object *doc = json_object_new_object();
    json_object_object_add(doc, "swagger", json_object_new_string("2.0"));
    json_object *info = json_object_new_object();
    json_object_object_add(info, "title", json_object_new_string("StreamVibe REST API"));
    json_object_object_add(info, "description",
                           json_object_new_string("PostgREST-compatible data API over the exposed tables and functions"));
    json_object_object_add(info, "version", json_object_new_string(PACKAGE_VERSION));
    json_object_object_add(doc, "info", info);
    json_object_object_add(doc, "basePath",
                           json_object_new_string(sv_arena_printf(ctx->arena, "%s/rest/v1", ctx->cfg->base_path)));
    json_object *schemes = json_object_new_array();
    json_object_array_add(schemes, json_object_new_string("http"));
    json_object_array_add(schemes, json_object_new_string("https"));
    json_object_object_add(doc, "schemes", schemes);
    json_object *consumes = json_object_new_array();
    json_object_array_add(consumes, json_object_new_string("application/json"));
    json_object_object_add(doc, "consumes", consumes);
    json_object *produces = json_object_new_array();
    json_object_array_add(produces, json_object_new_string("application/json"));
    json_object_array_add(produces, json_object_new_string("application/vnd.pgrst.object+json"));
    json_object_object_add(doc, "produces", produces);

    static const struct {
        const char *key, *name, *in, *desc;
    } shared_params[] = {
        { "select", "select", "query", "Columns to return: col, alias:col, col::type, *" },
        { "order", "order", "query", "Ordering: col.asc|desc[.nullsfirst|nullslast],..." },
        { "limit", "limit", "query", "Maximum number of rows" },
        { "offset", "offset", "query", "Rows to skip" },
        { "range", "Range", "header", "Row range, e.g. 0-9" },
        { "preferCount", "Prefer", "header", "count=exact" },
        { "preferReturn", "Prefer", "header",
          "return=minimal|representation|headers-only, resolution=merge-duplicates|ignore-duplicates" },
        { "on_conflict", "on_conflict", "query", "Upsert conflict target columns" },
    };
    json_object *parameters = json_object_new_object();
    for (size_t i = 0; i < sizeof(shared_params) / sizeof(shared_params[0]); i++)
        json_object_object_add(parameters, shared_params[i].key,
                               sv_rest_openapi_simple_param(shared_params[i].name, shared_params[i].in,
                                                            "string", shared_params[i].desc));
    json_object_object_add(doc, "parameters", parameters);

    json_object *paths = json_object_new_object();
    json_object *definitions = json_object_new_object();
    json_object *root = json_object_new_object();
    json_object_object_add(root, "get", sv_rest_openapi_op("OpenAPI description (this document)", NULL, 0, "200", "OK"));
    json_object_object_add(paths, "/", root);

    for (int i = 0; i < cache->ntables; i++) {
        const sv_rest_table_def *t = &cache->tables[i];
        json_object *def = json_object_new_object();
        json_object *props = json_object_new_object();
        json_object *required = json_object_new_array();
        json_object_object_add(def, "type", json_object_new_string("object"));
        for (int c = 0; c < t->ncols; c++) {
            json_object *p = sv_rest_openapi_type(t->cols[c].type);
            if (t->cols[c].flags & SV_REST_COL_PK)
                json_object_object_add(p, "description",
                                       json_object_new_string("Note:\nThis is a Primary Key.<pk/>"));
            json_object_object_add(props, t->cols[c].name, p);
            if ((t->cols[c].flags & SV_REST_COL_NOT_NULL) &&
                !(t->cols[c].flags & (SV_REST_COL_DEFAULT | SV_REST_COL_GENERATED)))
                json_object_array_add(required, json_object_new_string(t->cols[c].name));
        }
        json_object_object_add(def, "required", required);
        json_object_object_add(def, "properties", props);
        json_object_object_add(definitions, t->name, def);

        static const char *const read_refs[] = { "#/parameters/select", "#/parameters/order",
                                                 "#/parameters/range", "#/parameters/offset",
                                                 "#/parameters/limit", "#/parameters/preferCount" };
        static const char *const write_refs[] = { "#/parameters/select", "#/parameters/preferReturn" };
        static const char *const insert_refs[] = { "#/parameters/select", "#/parameters/preferReturn",
                                                   "#/parameters/on_conflict" };
        json_object *path = json_object_new_object();
        json_object_object_add(path, "get", sv_rest_openapi_op("Read rows (filters: col=op.value)",
                                                               read_refs, 6, "200", "OK"));
        if (!(t->flags & SV_REST_TABLE_VIEW)) {
            json_object_object_add(path, "post", sv_rest_openapi_op("Insert or upsert rows",
                                                                    insert_refs, 3, "201", "Created"));
            json_object_object_add(path, "patch", sv_rest_openapi_op("Update the filtered rows",
                                                                     write_refs, 2, "204", "No Content"));
            json_object_object_add(path, "delete",
                                   sv_rest_openapi_op((t->flags & SV_REST_TABLE_SOFT_DELETE)
                                                          ? "Soft-delete the filtered rows (sets deleted_at)"
                                                          : "Delete the filtered rows",
                                                      write_refs, 2, "204", "No Content"));
        }
        json_object_object_add(paths, sv_arena_printf(req->arena, "/%s", t->name), path);
    }

    for (int i = 0; i < cache->nfunctions; i++) {
        const sv_rest_function_def *f = &cache->functions[i];
        json_object *path = json_object_new_object();
        json_object *op = sv_rest_openapi_op(sv_arena_printf(req->arena, "Call %s (returns %s%s)",
                                                             f->name, f->returns_set ? "setof " : "",
                                                             f->return_type),
                                             NULL, 0, "200", "OK");
        json_object *params = json_object_object_get(op, "parameters");
        json_object *body = json_object_new_object();
        json_object_object_add(body, "name", json_object_new_string("args"));
        json_object_object_add(body, "in", json_object_new_string("body"));
        json_object_object_add(body, "required", json_object_new_boolean(f->nargs > f->ndefaults));
        json_object *schema = json_object_new_object();
        json_object_object_add(schema, "type", json_object_new_string("object"));
        json_object *props = json_object_new_object();
        json_object *required = json_object_new_array();
        for (int a = 0; a < f->nargs; a++) {
            json_object_object_add(props, f->arg_names[a], sv_rest_openapi_type(f->arg_types[a]));
            if (a < f->nargs - f->ndefaults)
                json_object_array_add(required, json_object_new_string(f->arg_names[a]));
        }
        json_object_object_add(schema, "required", required);
        json_object_object_add(schema, "properties", props);
        json_object_object_add(body, "schema", schema);
        json_object_array_add(params, body);
        json_object_object_add(path, "post", op);
        json_object_object_add(path, "get",
                               sv_rest_openapi_op("Call with arguments as query parameters", NULL, 0, "200", "OK"));
        json_object_object_add(paths, sv_arena_printf(req->arena, "/rpc/%s", f->name), path);
    }
    json_object_object_add(doc, "paths", paths);
    json_object_object_add(doc, "definitions", definitions);
    sv_response_header(ctx->res, "Content-Type", "application/openapi+json; charset=utf-8");
    sv_response_json(ctx->res, 200, doc);
    return SV_OK;
}
