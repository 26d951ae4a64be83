/*
 * bench_parse.c — the floor for `revstream replay`: read a JSON Lines file
 * and json_loadb() each line, nothing else. Prints
 * "parse: lines=N seconds=S rate=R/s".
 *
 * Usage: bench_parse FILE.jsonl
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    long lines = 0, bad = 0;
    int status = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: bench_parse FILE.jsonl\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (f == NULL) {
        perror(argv[1]);
        return 1;
    }
    double t0 = now_s();
    while ((len = getline(&buf, &cap, f)) != -1) {
        json_t *v = json_loadb(buf, (size_t)len, 0, NULL);
        if (v == NULL)
            bad++;
        json_decref(v);
        lines++;
    }
    if (ferror(f)) {
        perror(argv[1]);
        goto exit;
    }
    double s = now_s() - t0;
    printf("parse: lines=%ld bad=%ld seconds=%.3f rate=%.0f/s\n", lines, bad, s,
           s > 0 ? (double)lines / s : 0.0);
    status = 0;
exit:
    free(buf);
    fclose(f);
    return status;
}
