/* Minimal TAP producer for the C unit tests (run by automake's TAP driver
 * and by prove). */
#ifndef SV_TAP_H
#define SV_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_count;
static int tap_failed;

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, want, ...) \
    tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...) \
    tap_is_int((long long)(got), (long long)(want), __FILE__, __LINE__, __VA_ARGS__)

static void tap_ok(int pass, const char *file, int line, const char *name)
    __attribute__((unused));
static void tap_ok(int pass, const char *file, int line, const char *name)
{
    tap_count++;
    printf("%sok %d - %s\n", pass ? "" : "not ", tap_count, name);
    if (!pass) {
        tap_failed++;
        printf("#   Failed test at %s line %d.\n", file, line);
    }
}

static void tap_is_str(const char *got, const char *want, const char *file, int line,
                       const char *name) __attribute__((unused));
static void tap_is_str(const char *got, const char *want, const char *file, int line,
                       const char *name)
{
    int pass = (got == NULL && want == NULL) ||
               (got != NULL && want != NULL && strcmp(got, want) == 0);
    tap_ok(pass, file, line, name);
    if (!pass)
        printf("#          got: %s\n#     expected: %s\n", got ? got : "(null)",
               want ? want : "(null)");
}

static void tap_is_int(long long got, long long want, const char *file, int line,
                       const char *name) __attribute__((unused));
static void tap_is_int(long long got, long long want, const char *file, int line,
                       const char *name)
{
    tap_ok(got == want, file, line, name);
    if (got != want)
        printf("#          got: %lld\n#     expected: %lld\n", got, want);
}

static int tap_done(void) __attribute__((unused));
static int tap_done(void)
{
    printf("1..%d\n", tap_count);
    return tap_failed ? 1 : 0;
}

#endif
