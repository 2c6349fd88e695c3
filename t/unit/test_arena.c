#include <stdint.h>

#include "core/sv_arena.h"
#include "tap.h"

int main(void)
{
    sv_arena arena;
    sv_arena_init(&arena, 128);

    char *a = sv_arena_strdup(&arena, "hello");
    is_str(a, "hello", "strdup copies");
    ok(((uintptr_t)sv_arena_alloc(&arena, 3) % _Alignof(max_align_t)) == 0,
       "allocations are max-aligned");

    char *big = sv_arena_alloc(&arena, 10000);
    memset(big, 'x', 10000);
    ok(big[9999] == 'x', "an allocation larger than a chunk gets its own chunk");
    is_str(a, "hello", "earlier allocations survive a new chunk");

    is_str(sv_arena_printf(&arena, "%s-%d", "id", 42), "id-42", "printf formats");

    sv_buf buf;
    sv_buf_init(&buf, &arena, 4);
    for (int i = 0; i < 1000; i++)
        sv_buf_puts(&buf, "ab");
    is_int(buf.len, 2000, "buffer grows past its initial size");
    ok(buf.data[buf.len] == '\0', "buffer stays NUL-terminated");
    sv_buf_printf(&buf, "%d", 7);
    ok(buf.data[2000] == '7' && buf.len == 2001, "buf_printf appends");

    sv_arena_reset(&arena);
    char *after = sv_arena_strdup(&arena, "again");
    is_str(after, "again", "arena usable after reset");

    sv_arena_free(&arena);
    ok(arena.head == NULL, "free releases every chunk");
    return tap_done();
}
