/*
 * fuzz_replay — a main() for the fuzz targets where libFuzzer is not
 * available (gcc): runs LLVMFuzzerTestOneInput once on every file named on
 * the command line and on every regular file of every directory named there
 * (not recursively, in name order). Arguments starting with '-' are
 * libFuzzer flags (such as -runs=0) and are ignored.
 *
 * LLVMFuzzerInitialize, when the target defines it, runs first, as libFuzzer
 * runs it. Each input is passed in a buffer of exactly its size, so the
 * sanitizers see a read past its end.
 *
 * Exit status: 0 when every input ran (a target reports a violated property
 * by aborting), 1 when an input could not be read or none was given.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Run the target on one file; -1 when it cannot be read. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fuzz_replay: %s: cannot open\n", path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf != NULL) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (len < cap)
            break;
        uint8_t *nb = realloc(buf, cap * 2);
        if (nb == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = buf == NULL || ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        fprintf(stderr, "fuzz_replay: %s: cannot read\n", path);
        return -1;
    }
    /* Exactly len bytes, so that ASan catches a read past the input. */
    uint8_t *data = realloc(buf, len ? len : 1);
    if (data == NULL) {
        free(buf);
        return -1;
    }
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

static int skip_entry(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

int main(int argc, char **argv)
{
    size_t runs = 0;
    int rc = 0;

    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (argv[i][0] == '-')
            continue;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz_replay: %s: no such file or directory\n", argv[i]);
            rc = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) != 0)
                rc = 1;
            else
                runs++;
            continue;
        }
        struct dirent **names = NULL;
        int n = scandir(argv[i], &names, skip_entry, alphasort);
        if (n < 0) {
            fprintf(stderr, "fuzz_replay: %s: cannot list\n", argv[i]);
            rc = 1;
            continue;
        }
        for (int k = 0; k < n; k++) {
            size_t plen = strlen(argv[i]) + strlen(names[k]->d_name) + 2;
            char *path = malloc(plen);
            if (path != NULL) {
                snprintf(path, plen, "%s/%s", argv[i], names[k]->d_name);
                if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                    if (run_file(path) != 0)
                        rc = 1;
                    else
                        runs++;
                }
            } else {
                rc = 1;
            }
            free(path);
            free(names[k]);
        }
        free(names);
    }
    if (runs == 0) {
        fprintf(stderr, "fuzz_replay: no input ran\n");
        rc = 1;
    }
    printf("fuzz_replay: %zu inputs ran\n", runs);
    return rc;
}
