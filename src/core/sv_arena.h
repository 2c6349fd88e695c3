/* Per-request memory: everything a request allocates comes from one arena
 * that is reset in one call when the request ends, so no handler frees
 * anything and an early error return cannot leak. */
#ifndef SV_ARENA_H
#define SV_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct sv_arena_chunk sv_arena_chunk;

typedef struct sv_arena_secret sv_arena_secret;

typedef struct sv_arena {
    sv_arena_chunk  *head;   /* newest chunk first */
    size_t           chunk_size;
    sv_arena_secret *secrets; /* wiped at reset and free */
} sv_arena;

void  sv_arena_init(sv_arena *arena, size_t chunk_size);
void *sv_arena_alloc(sv_arena *arena, size_t size);
void *sv_arena_calloc(sv_arena *arena, size_t size);
char *sv_arena_strdup(sv_arena *arena, const char *s);
char *sv_arena_strndup(sv_arena *arena, const char *s, size_t n);
char *sv_arena_printf(sv_arena *arena, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *sv_arena_vprintf(sv_arena *arena, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* size bytes for a secret (a plaintext token, key material): the arena
 * wipes them with sodium_memzero when it is reset or freed, so an early
 * error return cannot leave a secret behind in memory the next request
 * reuses. The caller may wipe earlier with sodium_memzero itself. */
void *sv_arena_secret_alloc(sv_arena *arena, size_t size);
void  sv_arena_reset(sv_arena *arena);
void  sv_arena_free(sv_arena *arena);

/* A growable byte string whose storage lives in an arena. Always
 * NUL-terminated so it can be handed to C string functions. */
typedef struct sv_buf {
    sv_arena *arena;
    char     *data;
    size_t    len;
    size_t    cap;
} sv_buf;

void sv_buf_init(sv_buf *buf, sv_arena *arena, size_t initial);
void sv_buf_append(sv_buf *buf, const void *data, size_t len);
void sv_buf_puts(sv_buf *buf, const char *s);
void sv_buf_printf(sv_buf *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
