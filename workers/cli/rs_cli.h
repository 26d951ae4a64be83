/*
 * rs_cli — the `revstream` program: one binary, git-like subcommands.
 *
 * Invariants:
 *   - main() (main.c) looks the first argument up in one table of commands
 *     and calls its function with the remaining arguments; argv[0] of the
 *     call is the command's name ("replay"), so getopt() error messages name
 *     the command.
 *   - A command returns the process exit status: 0 success, 1 usage or I/O
 *     error; a command may define more (replay: 2 = some event rejected).
 *   - A command prints its reports on stdout and everything else (logs,
 *     errors, progress) on stderr as key=value lines prefixed with its name.
 *     Nothing a command logs may contain a secret (passwords, tokens, keys).
 *   - `<command> --help` prints the command's usage on stdout and exits 0.
 *
 * Ownership: commands own nothing beyond their own call; main() owns argv.
 *
 * Adding a command: declare its function below (one line, in the marked
 * block), then add one line to the table in main.c. Nothing else changes.
 */
#ifndef RS_CLI_H
#define RS_CLI_H

#define RS_CLI_VERSION RS_VERSION /* CMakeLists.txt: RS_VERSION */

/* A subcommand. argv[0] is the command name; argc >= 1. Returns the exit status. */
typedef int (*rs_cli_cmd_fn)(int argc, char **argv);

typedef struct rs_cli_cmd {
    const char *name; /* what the user types: "replay" */
    rs_cli_cmd_fn fn; /* the implementation */
    const char *help; /* one line for `revstream help` */
} rs_cli_cmd_t;

/* The table of commands (main.c), terminated by an entry with name NULL. */
extern const rs_cli_cmd_t rs_cli_commands[];

/* The default --schemas directory (main.c): share/revstream/schemas next to
 * the installed binary, else the source tree's schemas/ (rs_paths.h). A
 * static buffer, filled on the first call; the program is single-threaded
 * where it calls this. */
const char *rs_cli_schema_dir(void);

/* ---- commands: one declaration each (keep in the order of the table) ---- */
int rs_cli_cmd_replay(int argc, char **argv);   /* cmd_replay.c */
int rs_cli_cmd_broker(int argc, char **argv);   /* cmd_broker.c */
int rs_cli_cmd_encode(int argc, char **argv);   /* cmd_codec.c */
int rs_cli_cmd_decode(int argc, char **argv);   /* cmd_codec.c */
int rs_cli_cmd_worker(int argc, char **argv);   /* cmd_worker.c */
int rs_cli_cmd_state(int argc, char **argv);    /* cmd_state.c */
int rs_cli_cmd_produce(int argc, char **argv);  /* cmd_produce.c */
int rs_cli_cmd_report(int argc, char **argv);   /* cmd_report.c */
int rs_cli_cmd_generate(int argc, char **argv); /* cmd_generate.c */
int rs_cli_cmd_sink(int argc, char **argv);     /* cmd_sink.c */
int rs_cli_cmd_export(int argc, char **argv);   /* cmd_export.c */
int rs_cli_cmd_crm(int argc, char **argv);      /* cmd_crm.c */
int rs_cli_cmd_billing(int argc, char **argv);  /* cmd_billing.c */
/* Add yours here, e.g. (broker, encode, decode, worker, state):
 *   int rs_cli_cmd_broker(int argc, char **argv);   cmd_broker.c        */
/* ---- end of commands ---- */

/* The output `crm` and `billing` share (cmd_crm.c): JSON Lines to a file,
 * stdout, or (produce) a temp file handed to `produce` at _finish with the
 * worker config's settings. _finish returns the exit status (rc, or 1 when
 * writing or producing failed). */
#include "rs_event.h"
#include <stdio.h>
typedef struct rs_cli_intake_out {
    FILE *f;
    int produce;
    char tmp[64];
} rs_cli_intake_out_t;
int rs_cli_intake_open(rs_cli_intake_out_t *o, const char *out, int produce);
int rs_cli_intake_emit(void *ctx, const rs_event_t *ev);
int rs_cli_intake_finish(rs_cli_intake_out_t *o, const char *config, int rc);
typedef struct rs_cli_intake_args {
    const char *map, *state, *out, *config, *source;
    int produce, nfiles;
    char **files;
} rs_cli_intake_args_t;
/* Parses [--map F] [--state F] [--out F | --produce --config F] SOURCE FILE...:
 * 0, 1 (usage error, printed) or -1 (--help, printed). */
int rs_cli_intake_args(int argc, char **argv, int with_state, void (*usage)(FILE *),
                       rs_cli_intake_args_t *a);

#endif
