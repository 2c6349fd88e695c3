#include "core/sv_arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

struct sv_arena_chunk {
    sv_arena_chunk *next;
    size_t          size;
    size_t          used;
    max_align_t     data[];
};

#define SV_ALIGN (_Alignof(max_align_t))

/* One secret allocation: the list lives in the arena itself. */
struct sv_arena_secret {
    sv_arena_secret *next;
    void            *data;
    size_t           size;
};

/* Allocation failure is not recoverable for a worker: it would leave a
 * request half-answered. Abort so the master respawns a clean worker. */
static void *sv_xmalloc(size_t size)
{
    void *p = malloc(size);
    if (p == NULL) {
        fputs("streamvibe: out of memory\n", stderr);
        abort();
    }
    return p;
}

void sv_arena_init(sv_arena *arena, size_t chunk_size)
{
    arena->head = NULL;
    arena->chunk_size = chunk_size ? chunk_size : 16384;
    arena->secrets = NULL;
}

void *sv_arena_alloc(sv_arena *arena, size_t size)
{
    size_t rounded = (size + SV_ALIGN - 1) & ~(SV_ALIGN - 1);
    sv_arena_chunk *chunk = arena->head;

    if (rounded < size)
        abort();
    if (chunk == NULL || chunk->size - chunk->used < rounded) {
        size_t want = rounded > arena->chunk_size ? rounded : arena->chunk_size;
        chunk = sv_xmalloc(sizeof(*chunk) + want);
        chunk->size = want;
        chunk->used = 0;
        chunk->next = arena->head;
        arena->head = chunk;
    }
    void *p = (char *)chunk->data + chunk->used;
    chunk->used += rounded;
    return p;
}

void *sv_arena_calloc(sv_arena *arena, size_t size)
{
    void *p = sv_arena_alloc(arena, size);
    memset(p, 0, size);
    return p;
}

char *sv_arena_strndup(sv_arena *arena, const char *s, size_t n)
{
    char *p = sv_arena_alloc(arena, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *sv_arena_strdup(sv_arena *arena, const char *s)
{
    return s ? sv_arena_strndup(arena, s, strlen(s)) : NULL;
}

char *sv_arena_vprintf(sv_arena *arena, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return sv_arena_strdup(arena, "");
    char *p = sv_arena_alloc(arena, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *sv_arena_printf(sv_arena *arena, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = sv_arena_vprintf(arena, fmt, ap);
    va_end(ap);
    return p;
}

void *sv_arena_secret_alloc(sv_arena *arena, size_t size)
{
    sv_arena_secret *s = sv_arena_alloc(arena, sizeof(*s));
    s->data = sv_arena_calloc(arena, size ? size : 1);
    s->size = size;
    s->next = arena->secrets;
    arena->secrets = s;
    return s->data;
}

static void sv_arena_wipe_secrets(sv_arena *arena)
{
    for (sv_arena_secret *s = arena->secrets; s != NULL; s = s->next)
        sodium_memzero(s->data, s->size);
    arena->secrets = NULL;
}

/* Keeps the oldest chunk (the common request fits in it) and frees the
 * rest, so a steady worker does no malloc at all per request. */
void sv_arena_reset(sv_arena *arena)
{
    sv_arena_wipe_secrets(arena);
    sv_arena_chunk *chunk = arena->head;
    while (chunk != NULL && chunk->next != NULL) {
        sv_arena_chunk *next = chunk->next;
        free(chunk);
        chunk = next;
    }
    arena->head = chunk;
    if (chunk != NULL) {
        if (chunk->size > arena->chunk_size) {
            free(chunk);
            arena->head = NULL;
        } else {
            chunk->used = 0;
        }
    }
}

void sv_arena_free(sv_arena *arena)
{
    sv_arena_wipe_secrets(arena);
    sv_arena_chunk *chunk = arena->head;
    while (chunk != NULL) {
        sv_arena_chunk *next = chunk->next;
        free(chunk);
        chunk = next;
    }
    arena->head = NULL;
}

void sv_buf_init(sv_buf *buf, sv_arena *arena, size_t initial)
{
    buf->arena = arena;
    buf->cap = initial ? initial : 256;
    buf->data = sv_arena_alloc(arena, buf->cap);
    buf->len = 0;
    buf->data[0] = '\0';
}

static void sv_buf_reserve(sv_buf *buf, size_t extra)
{
    if (buf->len + extra + 1 <= buf->cap)
        return;
    size_t cap = buf->cap * 2;
    while (cap < buf->len + extra + 1)
        cap *= 2;
    char *data = sv_arena_alloc(buf->arena, cap);
    memcpy(data, buf->data, buf->len + 1);
    buf->data = data;
    buf->cap = cap;
}

void sv_buf_append(sv_buf *buf, const void *data, size_t len)
{
    sv_buf_reserve(buf, len);
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

void sv_buf_puts(sv_buf *buf, const char *s)
{
    sv_buf_append(buf, s, strlen(s));
}

void sv_buf_printf(sv_buf *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = sv_arena_vprintf(buf->arena, fmt, ap);
    va_end(ap);
    sv_buf_puts(buf, s);
}
