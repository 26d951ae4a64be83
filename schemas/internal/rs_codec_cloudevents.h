/*
 * rs_codec_cloudevents — structured-mode CloudEvents (JSON) as usage.recorded.
 * Internal to schemas/: the JSON codec calls it when an object has
 * `specversion` (rs_codec_json.c); the mapping is in rs_codec_cloudevents.c
 * and docs/intake.md.
 *
 * Ownership: returns a new jansson object (the native event) the caller
 * decrefs, or NULL with errstr set; `ce` is borrowed and left unchanged.
 */
#ifndef RS_CODEC_CLOUDEVENTS_H
#define RS_CODEC_CLOUDEVENTS_H

#include <jansson.h>
#include <stddef.h>

json_t *rs_codec_cloudevent_to_native(json_t *ce, char *errstr, size_t errlen);

#endif
