/*
 * fuzz_config — libFuzzer target for the worker config
 * (workers/kafka/rs_config.c over the properties parser workers/base/rs_props.c).
 *
 * Built by CMake with RS_FUZZ=ON (tests/fuzz/CMakeLists.txt); run by `make
 * fuzz` and, once per seed, by ctest (fuzz_config_corpus).
 *
 * Input: the config file's text, then optionally a form feed ('\f') and
 * environment entries, one "NAME=value" per line (REVSTREAM_* overrides; other
 * names are ignored by the loader).
 *
 * Seeds (tests/fuzz/corpus/fuzz_config/): examples/worker.properties, and
 * small configs with every kind of key, bad values, duplicates, secrets, env
 * overrides and kafka.* pass-through properties.
 *
 * Invariants checked on every input (a violation aborts, which libFuzzer reports):
 *   - loading never crashes, leaks or reads out of bounds (ASan/UBSan);
 *   - a refused config has a non-empty message;
 *   - an accepted one describes itself (rs_config_describe), has
 *     kafka.bootstrap.servers and state.dir (both required), and every key
 *     the description names has a value and an origin;
 *   - the same text loads to the same description (no hidden state).
 * Not checked here: that secrets are masked in the description (issue 17
 * defect 5, fixed elsewhere; its tests are in tests/unit/test_config.c).
 *
 * Ownership: every config, copy and string is freed before returning.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rs_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENV 16

/* Every key of a description ("k=v k=\"v w\" ...") has a value and origin. */
static void check_keys(const rs_config_t *c, const char *desc)
{
    const char *p = desc;
    while (*p != '\0') {
        const char *eq = strchr(p, '=');
        if (eq == NULL)
            abort();
        char key[256];
        size_t klen = (size_t)(eq - p);
        if (klen == 0 || klen >= sizeof key)
            abort();
        memcpy(key, p, klen);
        key[klen] = '\0';
        if (rs_config_get(c, key) == NULL || rs_config_origin(c, key) == NULL)
            abort();
        /* skip the value: quoted (with \" and \\ escapes) or up to a space */
        p = eq + 1;
        if (*p == '"') {
            for (p++; *p != '\0' && *p != '"'; p++)
                if (*p == '\\' && p[1] != '\0')
                    p++;
            if (*p != '"')
                abort();
            p++;
        } else {
            p += strcspn(p, " ");
        }
        if (*p == ' ')
            p++;
    }
}

static char *load_describe(const char *text, char *const *envp, int *ok)
{
    rs_config_t *c = NULL;
    char err[1024];
    err[0] = '\0';
    if (rs_config_load_text(&c, text, "fuzz.properties", envp, err, sizeof err) != 0) {
        if (err[0] == '\0' || c != NULL)
            abort();
        *ok = 0;
        return NULL;
    }
    *ok = 1;
    char *d = rs_config_describe(c);
    if (d == NULL || rs_config_get(c, "kafka.bootstrap.servers") == NULL ||
        rs_config_get(c, "state.dir") == NULL)
        abort();
    check_keys(c, d);
    rs_config_destroy(c);
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char *envp[MAX_ENV + 1];
    int n = 0, ok1 = 0, ok2 = 0;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *ff = memchr(text, '\f', size);
    if (ff != NULL) {
        *ff = '\0';
        for (char *line = ff + 1; line != NULL && n < MAX_ENV;) {
            char *nl = strchr(line, '\n');
            if (nl != NULL)
                *nl = '\0';
            if (*line != '\0')
                envp[n++] = line;
            line = nl != NULL ? nl + 1 : NULL;
        }
    }
    envp[n] = NULL;
    char *d1 = load_describe(text, envp, &ok1);
    char *d2 = load_describe(text, envp, &ok2);
    if (ok1 != ok2 || (ok1 && strcmp(d1, d2) != 0))
        abort();
    free(d1);
    free(d2);
    free(text);
    return 0;
}
