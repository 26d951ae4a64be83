/*
 * main.c — `revstream <command> [options]`: find the command, run it.
 *
 * Invariants:
 *   - rs_cli_commands[] is the only list of commands; `revstream help` prints
 *     it in table order. Names are unique.
 *   - Built in here, not in the table: `help [command]`, `--help`/`-h`,
 *     `--version`/`version`. Everything else goes to the table; an unknown
 *     command is an error on stderr and exit status 1.
 *   - main() passes the command its own argv slice (argv[0] = command name)
 *     and returns the command's status unchanged.
 *
 * Ownership: nothing is allocated here (rs_cli_schema_dir() fills a static
 * buffer once).
 */
#include <stdio.h>
#include <string.h>

#include "rs_cli.h"
#include "rs_paths.h"

/*
 * The commands. To add one: one line here, one declaration in rs_cli.h.
 * Keep the order people should read them in `revstream help`.
 */
const rs_cli_cmd_t rs_cli_commands[] = {
    {"replay", rs_cli_cmd_replay, "replay a JSON Lines file of events and print a report"},
    {"broker", rs_cli_cmd_broker, "run an embedded Kafka mock broker until SIGINT/SIGTERM"},
    {"encode", rs_cli_cmd_encode, "write JSON Lines events as Avro records, a file per topic"},
    {"decode", rs_cli_cmd_decode, "print an .avrobin file of Avro records as JSON Lines"},
    {"worker", rs_cli_cmd_worker,
     "run the Kafka stream worker (journal, balances, dead letters)"},
    {"state", rs_cli_cmd_state, "look into or checkpoint a worker's state store"},
    {"produce", rs_cli_cmd_produce, "put a JSON Lines file of events on the input topics"},
    {"report", rs_cli_cmd_report, "a worker's reports: journal topic plus its state store"},
    {"generate", rs_cli_cmd_generate,
     "write a deterministic, realistic book of events (JSON Lines)"},
    {"sink", rs_cli_cmd_sink, "consume the output topics into PostgreSQL tables"},
    {"export", rs_cli_cmd_export,
     "a period's journal as QuickBooks, Xero, NetSuite, freee or MoneyForward import files"},
    {"crm", rs_cli_cmd_crm, "CRM deals (HubSpot, Salesforce) as contract events"},
    {"billing", rs_cli_cmd_billing, "billing events (Stripe) as invoice and payment events"},
    /* Other engineers: add your command here, one line each, e.g.
     *   {"broker", rs_cli_cmd_broker, "run an embedded Kafka mock broker"},
     *   {"encode", ...}, {"decode", ...}, {"worker", ...}, {"state", ...}, */
    {NULL, NULL, NULL},
};

const char *rs_cli_schema_dir(void)
{
    static char dir[4096];

    if (dir[0] == '\0')
        rs_paths_schema_dir(dir, sizeof dir);
    return dir;
}

static void usage(FILE *f)
{
    size_t width = 0;
    for (const rs_cli_cmd_t *c = rs_cli_commands; c->name != NULL; c++)
        if (strlen(c->name) > width)
            width = strlen(c->name);

    fprintf(f, "usage: revstream <command> [options]\n"
               "       revstream help <command>\n"
               "       revstream --version\n"
               "\n"
               "Revenue-recognition stream worker: turns contract, invoice, payment and usage\n"
               "events into double-entry journal entries and deferred-revenue balances.\n"
               "\n"
               "Commands:\n");
    for (const rs_cli_cmd_t *c = rs_cli_commands; c->name != NULL; c++)
        fprintf(f, "  %-*s  %s\n", (int)width, c->name, c->help);
    fprintf(f, "\nRun 'revstream <command> --help' for a command's options.\n");
}

static const rs_cli_cmd_t *find_command(const char *name)
{
    for (const rs_cli_cmd_t *c = rs_cli_commands; c->name != NULL; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static int unknown_command(const char *name)
{
    fprintf(stderr, "revstream: unknown command \"%s\" (run 'revstream help' for the list)\n",
            name);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    const char *name = argv[1];

    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("revstream %s\n", RS_CLI_VERSION);
        return 0;
    }
    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return 0;
        }
        const rs_cli_cmd_t *c = find_command(argv[2]);
        if (c == NULL)
            return unknown_command(argv[2]);
        char help_flag[] = "--help";
        char *sub_argv[] = {argv[2], help_flag, NULL};
        return c->fn(2, sub_argv);
    }

    const rs_cli_cmd_t *c = find_command(name);
    if (c == NULL)
        return unknown_command(name);
    return c->fn(argc - 1, argv + 1);
}
