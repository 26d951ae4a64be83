/*
 * rs_json_fast.cpp — simdjson's DOM parser behind the small C interface of
 * internal/rs_json_fast.h (its comment states what is refused and why).
 *
 * Invariants:
 *   - A document is handed out only after check() walked every value of it:
 *     no object with a duplicate key, no string or key with a NUL byte, no
 *     integer that only fits uint64. Anything else simdjson refused already.
 *   - rs_jf_val_t holds a dom::element bit for bit (both 16 bytes, trivially
 *     copyable: checked at compile time).
 *   - No C++ exception crosses the C interface: only simdjson's
 *     error-code API is used, and allocation failure of the thread-local
 *     state makes rs_jf_parse() return -1 (the caller falls back to jansson).
 *
 * Ownership: the thread-local parser owns the document and its strings; the
 * padded copy of the input is a thread-local buffer that only grows (to the
 * longest document the thread parsed).
 */
#include "rs_json_fast.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <string_view>
#include <type_traits>
#include <vector>

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

static_assert(sizeof(element) == sizeof(rs_jf_val_t), "a value holds a dom::element");
static_assert(std::is_trivially_copyable<element>::value, "dom::element is copied bytewise");

namespace
{

struct fast_state {
    simdjson::dom::parser parser;
    std::vector<char> buf; /* the padded input */
};

thread_local fast_state *tl_state = nullptr;

/* The thread's state, freed when the thread exits. */
struct state_owner {
    ~state_owner()
    {
        delete tl_state;
    }
};
thread_local state_owner tl_owner;

inline rs_jf_val_t wrap(const element &e)
{
    rs_jf_val_t v;
    std::memcpy(&v, &e, sizeof v);
    return v;
}

inline element unwrap(const rs_jf_val_t *v)
{
    element e;
    std::memcpy(static_cast<void *>(&e), v, sizeof e); /* trivially copyable */
    return e;
}

inline bool has_nul(std::string_view s)
{
    return std::memchr(s.data(), '\0', s.size()) != nullptr;
}

/* Keys of one object, all distinct? (Objects of events are small: a sort
 * only past a few dozen keys.) */
bool keys_distinct(std::vector<std::string_view> &keys, size_t from)
{
    size_t n = keys.size() - from;
    if (n <= 24) {
        for (size_t i = from; i < keys.size(); i++)
            for (size_t j = i + 1; j < keys.size(); j++)
                if (keys[i] == keys[j])
                    return false;
        return true;
    }
    std::sort(keys.begin() + static_cast<std::ptrdiff_t>(from), keys.end());
    return std::adjacent_find(keys.begin() + static_cast<std::ptrdiff_t>(from), keys.end()) ==
           keys.end();
}

/* Would jansson build exactly this tree? (see the file comment) */
bool check(const element &e, std::vector<std::string_view> &keys)
{
    switch (e.type()) {
    case element_type::OBJECT: {
        object o;
        if (e.get(o) != simdjson::SUCCESS)
            return false;
        size_t from = keys.size();
        for (simdjson::dom::key_value_pair kv : o) {
            if (has_nul(kv.key))
                return false;
            keys.push_back(kv.key);
            if (!check(kv.value, keys))
                return false;
        }
        bool ok = keys_distinct(keys, from);
        keys.resize(from);
        return ok;
    }
    case element_type::ARRAY: {
        array a;
        if (e.get(a) != simdjson::SUCCESS)
            return false;
        for (element item : a)
            if (!check(item, keys))
                return false;
        return true;
    }
    case element_type::STRING: {
        std::string_view s;
        return e.get(s) == simdjson::SUCCESS && !has_nul(s);
    }
    case element_type::UINT64: /* above INT64_MAX: jansson says "too big integer" */
        return false;
    default:
        return true;
    }
}

} // namespace

extern "C" int rs_jf_parse(const char *json, size_t len, rs_jf_val_t *root)
{
    try {
        if (tl_state == nullptr) {
            (void)&tl_owner; /* registers the thread's destructor */
            tl_state = new fast_state();
        }
        fast_state &st = *tl_state;
        if (st.buf.size() < len + simdjson::SIMDJSON_PADDING)
            st.buf.resize(len + simdjson::SIMDJSON_PADDING);
        std::memcpy(st.buf.data(), json, len);
        std::memset(st.buf.data() + len, 0, simdjson::SIMDJSON_PADDING);
        element doc;
        if (st.parser.parse(st.buf.data(), len, false).get(doc) != simdjson::SUCCESS)
            return -1;
        std::vector<std::string_view> keys;
        keys.reserve(32);
        if (!check(doc, keys))
            return -1;
        *root = wrap(doc);
        return 0;
    } catch (...) { /* std::bad_alloc from the state or the key list */
        return -1;
    }
}

extern "C" rs_jf_type_t rs_jf_type(const rs_jf_val_t *v)
{
    switch (unwrap(v).type()) {
    case element_type::NULL_VALUE:
        return RS_JF_NULL;
    case element_type::OBJECT:
        return RS_JF_OBJECT;
    case element_type::ARRAY:
        return RS_JF_ARRAY;
    case element_type::STRING:
        return RS_JF_STRING;
    default:
        return RS_JF_OTHER;
    }
}

extern "C" int rs_jf_member(const rs_jf_val_t *obj, const char *key, rs_jf_val_t *out)
{
    object o;
    element m;
    if (unwrap(obj).get(o) != simdjson::SUCCESS || o.at_key(key).get(m) != simdjson::SUCCESS)
        return 0;
    *out = wrap(m);
    return 1;
}

extern "C" const char *rs_jf_string(const rs_jf_val_t *v, size_t *n)
{
    std::string_view s;
    if (unwrap(v).get(s) != simdjson::SUCCESS) {
        *n = 0;
        return "";
    }
    *n = s.size();
    return s.data(); /* the DOM keeps a NUL after each string */
}

extern "C" size_t rs_jf_array_size(const rs_jf_val_t *v)
{
    array a;
    return unwrap(v).get(a) == simdjson::SUCCESS ? a.size() : 0;
}

extern "C" void rs_jf_array_item(const rs_jf_val_t *v, size_t i, rs_jf_val_t *out)
{
    array a;
    element item;
    if (unwrap(v).get(a) == simdjson::SUCCESS && a.at(i).get(item) == simdjson::SUCCESS)
        *out = wrap(item);
    else
        *out = rs_jf_val_t{nullptr, nullptr};
}
