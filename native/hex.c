/*
 * The sha256 file's list of hex digests, both ways: 262,144 of them for an
 * 8 GiB volume (17 MB of JSON), read from the parent and written again by
 * every incremental. In JS the two loops took ~60 and ~40 ms of a backup
 * that a dirty bitmap makes otherwise short.
 *
 *   scanHexList(bytes, at, out) -> { end, count } | null
 *     The list that opens with '[' at bytes[at], when it is plain: strings of
 *     exactly 64 lower-case hex digits, separated by commas, with JSON
 *     whitespace anywhere between tokens. Each digest goes into `out` as 32
 *     bytes; `end` is just past the ']'. null for anything else (an escape,
 *     upper case, a short string, a missing comma, the end of the bytes, a
 *     full `out`): the caller's full parser decides then.
 *
 *   writeHexItems(digests, out, at, first) -> position after
 *     Each 32 bytes of `digests` as an item of the list as Python's
 *     json.dumps(indent=4) writes it at depth 2: "\n    \"<64 hex>\"", joined
 *     by ',' (one before the first item too unless `first`).
 */
#include "bytes.h"
#include <stdint.h>

static signed char hex_value[256];

static int is_space(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static napi_value scan_hex_list(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  unsigned char *bytes, *out;
  size_t length, capacity;
  int64_t start = 0;
  if (argc < 3 || !bytes_of(env, argv[0], &bytes, &length) || napi_get_value_int64(env, argv[1], &start) != napi_ok ||
      !bytes_of(env, argv[2], &out, &capacity)) {
    napi_throw_type_error(env, NULL, "scanHexList: expected (Uint8Array, number, Uint8Array)");
    return NULL;
  }
  napi_value none = NULL;
  napi_get_null(env, &none);
  if (start < 0 || (size_t)start >= length || bytes[start] != '[') return none;
  size_t at = (size_t)start + 1, count = 0;
  while (at < length && is_space(bytes[at])) at++;
  if (at < length && bytes[at] == ']') {
    at++;
  } else {
    for (;;) {
      if (at + 65 >= length || bytes[at] != '"' || bytes[at + 65] != '"') return none;
      if ((count + 1) * 32 > capacity) return none;
      unsigned char *digest = out + count * 32;
      for (size_t i = 0; i < 32; i++) {
        int high = hex_value[bytes[at + 1 + 2 * i]], low = hex_value[bytes[at + 2 + 2 * i]];
        if ((high | low) < 0) return none;
        digest[i] = (unsigned char)((high << 4) | low);
      }
      count++;
      at += 66;
      while (at < length && is_space(bytes[at])) at++;
      if (at >= length) return none;
      if (bytes[at] == ']') {
        at++;
        break;
      }
      if (bytes[at] != ',') return none;
      at++;
      while (at < length && is_space(bytes[at])) at++;
    }
  }
  napi_value result, end_value, count_value;
  napi_create_object(env, &result);
  napi_create_int64(env, (int64_t)at, &end_value);
  napi_create_int64(env, (int64_t)count, &count_value);
  napi_set_named_property(env, result, "end", end_value);
  napi_set_named_property(env, result, "count", count_value);
  return result;
}

static const char digits[] = "0123456789abcdef";
static const char item_start[] = "\n    \"";

static napi_value write_hex_items(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  unsigned char *digests, *out;
  size_t length, capacity;
  int64_t at = 0;
  bool first = false;
  if (argc < 4 || !bytes_of(env, argv[0], &digests, &length) || !bytes_of(env, argv[1], &out, &capacity) ||
      napi_get_value_int64(env, argv[2], &at) != napi_ok || napi_get_value_bool(env, argv[3], &first) != napi_ok) {
    napi_throw_type_error(env, NULL, "writeHexItems: expected (Uint8Array, Uint8Array, number, boolean)");
    return NULL;
  }
  size_t items = length / 32;
  size_t needed = items * 72 - (first && items > 0 ? 1 : 0);
  if (length % 32 != 0 || at < 0 || (size_t)at > capacity || capacity - (size_t)at < needed) {
    napi_throw_range_error(env, NULL, "writeHexItems: digests not a multiple of 32 bytes, or no room for them");
    return NULL;
  }
  unsigned char *p = out + at;
  for (size_t i = 0; i < items; i++) {
    if (i > 0 || !first) *p++ = ',';
    for (size_t k = 0; k < sizeof item_start - 1; k++) *p++ = (unsigned char)item_start[k];
    const unsigned char *digest = digests + i * 32;
    for (size_t k = 0; k < 32; k++) {
      *p++ = (unsigned char)digits[digest[k] >> 4];
      *p++ = (unsigned char)digits[digest[k] & 15];
    }
    *p++ = '"';
  }
  napi_value result;
  napi_create_int64(env, (int64_t)(p - out), &result);
  return result;
}

NAPI_MODULE_INIT() {
  for (int c = 0; c < 256; c++) hex_value[c] = -1;
  for (int d = 0; d < 16; d++) hex_value[(unsigned char)digits[d]] = (signed char)d;
  napi_value fn;
  napi_create_function(env, "scanHexList", NAPI_AUTO_LENGTH, scan_hex_list, NULL, &fn);
  napi_set_named_property(env, exports, "scanHexList", fn);
  napi_create_function(env, "writeHexItems", NAPI_AUTO_LENGTH, write_hex_items, NULL, &fn);
  napi_set_named_property(env, exports, "writeHexItems", fn);
  return exports;
}
