/* The process title ps and /proc/<pid>/cmdline show, rewritten in place
 * over the argument and environment strings, as PostgreSQL and nginx do:
 * a job forked by the launcher shows the command line it would have had
 * if it had been started on its own. */
#ifndef SV_PROCTITLE_H
#define SV_PROCTITLE_H

/* Takes over argv's strings and the environment's (the environment moves
 * to the heap). Call once from main() before anything reads environ's
 * addresses; argv[1..] are not valid afterwards (argv[0] is). */
void sv_proctitle_init(int argc, char **argv);

/* Replaces the title; words separated by spaces appear as separate
 * arguments in cmdline. Cut to the space there is. */
void sv_proctitle_set(const char *title);

#endif
