/* Title, description and tag suggestions from an OpenAI-compatible chat
 * completions endpoint (ai_base_url, ai_model, ai_api_key). */
#ifndef SV_AI_H
#define SV_AI_H

#include <stddef.h>

#include <json-c/json.h>

#include "core/sv_arena.h"
#include "core/sv_config.h"

/* Limits a suggestion must keep (YouTube's, the strictest platform). */
#define SV_AI_TITLE_MAX 100
#define SV_AI_DESCRIPTION_MAX 5000
#define SV_AI_TAGS_MAX 15
#define SV_AI_TAG_MAX 100

/* The prompt's version, stored with each suggestion. */
#define SV_AI_PROMPT_VERSION "v1"

/* Asks the model for a suggestion for content with title, description
 * (either may be NULL) and tags (a JSON array, or NULL); the exchange's
 * memory comes from arena. SV_OK with
 * *suggestion = {"title","description","tags"} validated strictly (the
 * caller puts it), or SV_ERROR with the reason in why: the endpoint
 * failing after retries, refusing, or answering anything but exactly
 * that object within the limits above. */
int sv_ai_suggest(const sv_config *cfg, sv_arena *arena, const char *title, const char *description,
                  json_object *tags, json_object **suggestion, char *why, size_t whylen);

/* Checks a model's answer text against the suggestion's shape: SV_OK
 * with *suggestion, or SV_ERROR with the reason. Pure (unit-tested). */
int sv_ai_validate(const char *content, json_object **suggestion, char *why, size_t whylen);

#endif
