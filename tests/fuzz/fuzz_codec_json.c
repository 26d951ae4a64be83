/*
 * fuzz_codec_json — libFuzzer target for the JSON codec (schemas/rs_codec_json.c).
 *
 * Built by CMake with RS_FUZZ=ON (tests/fuzz/CMakeLists.txt); from the
 * repository root,
 *
 *   make fuzz                       # every target, FUZZ_SECONDS (30) each
 *   build-fuzz/fuzz_codec_json -max_total_time=60 \
 *     build-fuzz/fuzz-corpus/fuzz_codec_json tests/fuzz/corpus/fuzz_codec_json
 *
 * Seeds (tests/fuzz/corpus/fuzz_codec_json/, written by scripts/fuzz-seeds.sh):
 * event lines of examples/sample-book.jsonl, up to two of each event type.
 *
 * Invariants checked on every input (a violation aborts, which libFuzzer reports):
 *   - decode never crashes, leaks or reads past `size` bytes (ASan/UBSan);
 *   - the fast path (simdjson) and the jansson reference agree: same result,
 *     same message, and for an accepted event the same rs_event_hash;
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
    rs_event_t ev, again, ref;
    char err[512], referr[512];
    char *text = NULL, *text2 = NULL;

    rs_event_init(&again);
    int rc = rs_codec_json_decode((const char *)data, size, &ev, err, sizeof(err));
    int refrc =
        rs_codec_json_decode_jansson((const char *)data, size, &ref, referr, sizeof(referr));
    if (rc != refrc || (rc != 0 && strcmp(err, referr) != 0) ||
        (rc == 0 && rs_event_hash(&ev) != rs_event_hash(&ref)))
        abort();
    rs_event_clear(&ref);
    if (rc != 0) {
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
