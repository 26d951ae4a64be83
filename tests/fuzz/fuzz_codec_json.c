/*
 * fuzz_codec_json — libFuzzer target for the JSON codec (schemas/rs_codec_json.c).
 *
 * Not built by CMake (tests/fuzz is outside the test globs). Build and run it
 * with clang from the repository root:
 *
 *   clang -g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
 *     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *     -Ischemas -Iworkers/engine \
 *     tests/fuzz/fuzz_codec_json.c schemas/rs_codec_json.c schemas/rs_codec_fields.c \
 *     workers/engine/rs_event.c workers/engine/rs_money.c workers/engine/rs_names.c \
 *     $(pkg-config --cflags --libs jansson) -o /tmp/fuzz_codec_json
 *   mkdir -p /tmp/fuzz_corpus && /tmp/fuzz_codec_json -max_total_time=60 /tmp/fuzz_corpus
 *
 * (Seed the corpus with event lines, e.g. the JSON of tests/unit/test_codec_json.c,
 * to reach the per-type decoders sooner.)
 *
 * Invariants checked on every input (a violation aborts, which libFuzzer reports):
 *   - decode never crashes, leaks or reads past `size` bytes (ASan/UBSan);
 *   - a rejected input gets a message starting "event ";
 *   - an accepted event always encodes (decoded events are representable),
 *     the encoding decodes again to the same rs_event_hash, and re-encoding
 *     gives the same bytes (the encoding is canonical).
 *
 * Ownership: every event is cleared and every encoded string freed before
 * returning.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rs_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rs_event_t ev, again;
    char err[512];
    char *text = NULL, *text2 = NULL;

    rs_event_init(&again);
    if (rs_codec_json_decode((const char *)data, size, &ev, err, sizeof(err)) != 0) {
        if (strncmp(err, "event ", 6) != 0)
            abort();
        goto out;
    }
    text = rs_codec_json_encode(&ev);
    if (text == NULL)
        abort();
    if (rs_codec_json_decode(text, strlen(text), &again, err, sizeof(err)) != 0)
        abort();
    if (rs_event_hash(&ev) != rs_event_hash(&again))
        abort();
    text2 = rs_codec_json_encode(&again);
    if (text2 == NULL || strcmp(text, text2) != 0)
        abort();
out:
    free(text);
    free(text2);
    rs_event_clear(&ev);
    rs_event_clear(&again);
    return 0;
}
