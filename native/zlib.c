/*
 * zlib (RFC 1950) streams for chunked-backup's codec workers.
 *
 * exports.inflateInto(src, dst) -> bytes written to dst. One stream; bytes
 *   after its end are ignored, as zlib.inflateSync does. Throws when the data
 *   is corrupt or truncated, or does not fit in dst.
 * exports.deflate(src, level) -> Buffer, only when built with libdeflate.
 * exports.implementation: "libdeflate" or "zlib".
 *
 * Why: Node's zlib.inflateSync always allocates its output, and a restore
 * decompresses every object into a chunk slot; inflating there directly
 * halves the cost per object (33 ms against 66 ms per 50 MiB). Where
 * libdeflate is installed (libdeflate-dev), it does both directions: on a
 * 1 GiB disk image, deflate level 6 takes 3.0 s against zlib's 7.0 s (Node's
 * own zlib is in between) and inflate 0.34 s against 2.1 s, with the same
 * format and a slightly smaller output. Without it, the zlib symbols bind
 * to the zlib Node itself exports (no -lz), and compression stays in
 * node:zlib.
 */
#include <limits.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "bytes.h"

__attribute__((unused)) static napi_value fail(napi_env env, z_stream *s, const char *fallback) {
  char message[160];
  snprintf(message, sizeof message, "zlib: %s", s->msg != NULL ? s->msg : fallback);
  inflateEnd(s);
  napi_throw_error(env, NULL, message);
  return NULL;
}

/* The next at most 4 GiB of a buffer for a 32-bit zlib counter (unchanged `*next` when none is left). */
__attribute__((unused)) static uInt next_piece(unsigned char **next, unsigned char **rest, size_t *left) {
  if (*left == 0) return 0;
  uInt n = *left > UINT_MAX ? UINT_MAX : (uInt)*left;
  *next = *rest;
  *rest += n;
  *left -= n;
  return n;
}

__attribute__((unused)) static napi_value inflate_into_zlib(napi_env env, unsigned char *in, size_t in_left, unsigned char *out, size_t out_left) {
  z_stream s;
  memset(&s, 0, sizeof s);
  if (inflateInit(&s) != Z_OK) return fail(env, &s, "cannot initialise");
  /* zlib refuses a NULL next_out even with no room, and Node gives NULL for empty arrays. */
  static unsigned char nothing[1];
  s.next_in = nothing;
  s.next_out = nothing;
  int rc;
  /* avail_in/avail_out are 32-bit: feed objects past 4 GiB in pieces. */
  do {
    if (s.avail_in == 0) s.avail_in = next_piece(&s.next_in, &in, &in_left);
    if (s.avail_out == 0) s.avail_out = next_piece(&s.next_out, &out, &out_left);
    rc = inflate(&s, Z_NO_FLUSH);
  } while (rc == Z_OK);
  if (rc == Z_BUF_ERROR) {
    return fail(env, &s, s.avail_out == 0 && out_left == 0 ? "data decompresses to more than the expected length"
                                                            : "unexpected end of file");
  }
  if (rc != Z_STREAM_END) return fail(env, &s, "invalid data");
  double written = (double)s.total_out;
  inflateEnd(&s);
  napi_value result = NULL;
  napi_create_double(env, written, &result);
  return result;
}

#ifdef HAVE_LIBDEFLATE
#include <libdeflate.h>
#include <stdlib.h>

static napi_value inflate_into_libdeflate(napi_env env, unsigned char *in, size_t in_len, unsigned char *out, size_t out_len) {
  struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
  if (d == NULL) {
    napi_throw_error(env, NULL, "zlib: out of memory");
    return NULL;
  }
  size_t used, written;
  enum libdeflate_result rc = libdeflate_zlib_decompress_ex(d, in, in_len, out, out_len, &used, &written);
  libdeflate_free_decompressor(d);
  if (rc != LIBDEFLATE_SUCCESS) {
    napi_throw_error(env, NULL, rc == LIBDEFLATE_INSUFFICIENT_SPACE ? "zlib: data decompresses to more than the expected length"
                                                                     : "zlib: invalid or truncated data");
    return NULL;
  }
  napi_value result = NULL;
  napi_create_double(env, (double)written, &result);
  return result;
}

static napi_value deflate_to_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  unsigned char *in;
  size_t in_len;
  int32_t level = 6;
  if (argc < 2 || !bytes_of(env, argv[0], &in, &in_len) || napi_get_value_int32(env, argv[1], &level) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (Uint8Array, level)");
    return NULL;
  }
  struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
  if (c == NULL) {
    napi_throw_error(env, NULL, "zlib: cannot make a compressor at that level");
    return NULL;
  }
  size_t bound = libdeflate_zlib_compress_bound(c, in_len);
  unsigned char *out = malloc(bound);
  size_t written = out == NULL ? 0 : libdeflate_zlib_compress(c, in, in_len, out, bound);
  libdeflate_free_compressor(c);
  if (written == 0) {
    free(out);
    napi_throw_error(env, NULL, "zlib: compression failed");
    return NULL;
  }
  /* A copy of the compressed size only, into memory the worker can transfer. NULL
     (undefined) if it cannot be made, as when the worker is being terminated: an
     uninitialised value handed back to V8 crashed the process there. */
  napi_value result = NULL;
  void *copy;
  napi_create_buffer_copy(env, written, out, &copy, &result);
  free(out);
  return result;
}
#endif

static napi_value inflate_into(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  unsigned char *in, *out;
  size_t in_len, out_len;
  if (argc < 2 || !bytes_of(env, argv[0], &in, &in_len) || !bytes_of(env, argv[1], &out, &out_len)) {
    napi_throw_type_error(env, NULL, "expected (Uint8Array, Uint8Array)");
    return NULL;
  }
#ifdef HAVE_LIBDEFLATE
  return inflate_into_libdeflate(env, in, in_len, out, out_len);
#else
  return inflate_into_zlib(env, in, in_len, out, out_len);
#endif
}

NAPI_MODULE_INIT() {
  napi_value value = NULL;
  napi_create_function(env, "inflateInto", NAPI_AUTO_LENGTH, inflate_into, NULL, &value);
  napi_set_named_property(env, exports, "inflateInto", value);
#ifdef HAVE_LIBDEFLATE
  napi_create_function(env, "deflate", NAPI_AUTO_LENGTH, deflate_to_buffer, NULL, &value);
  napi_set_named_property(env, exports, "deflate", value);
  napi_create_string_utf8(env, "libdeflate", NAPI_AUTO_LENGTH, &value);
#else
  napi_create_string_utf8(env, "zlib", NAPI_AUTO_LENGTH, &value);
#endif
  napi_set_named_property(env, exports, "implementation", value);
  return exports;
}
