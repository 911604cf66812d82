/*
 * bzip2 for chunked-backup: a minimal N-API binding to the system libbz2.
 *
 * Why our own: no npm package compresses bzip2 cleanly (see README). libbz2 is
 * the library Python's bz2 module uses, so the output is byte-identical to
 * Cinder's `bz2.compress(data, 9)`. Work runs on the libuv pool so several
 * objects can be (de)compressed in parallel without blocking the event loop.
 *
 * exports.compress(buffer, level) -> Promise<Buffer>
 * exports.decompress(buffer, maxLength) -> Promise<Buffer>  (multi-stream; fails
 *   rather than produce more than maxLength bytes, when maxLength > 0)
 */
#include <bzlib.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref input_ref;
  const char *input;
  size_t input_len;
  int level;
  size_t max_length;
  int decompress;
  char *output;
  size_t output_len;
  int error;
} Job;

static void run_compress(Job *job) {
  /* bzip2's documented worst case: 1% + 600 bytes larger than the input. */
  unsigned int cap = (unsigned int)(job->input_len + job->input_len / 100 + 600);
  job->output = malloc(cap ? cap : 1);
  if (!job->output) { job->error = BZ_MEM_ERROR; return; }
  unsigned int dest_len = cap;
  job->error = BZ2_bzBuffToBuffCompress(job->output, &dest_len, (char *)job->input,
                                        (unsigned int)job->input_len, job->level, 0, 0);
  job->output_len = dest_len;
}

static void run_decompress(Job *job) {
  size_t limit = job->max_length; /* 0: unbounded */
  /* One byte of room past the limit tells "too long" from "exactly full". */
  size_t cap = limit > 0 ? limit + 1 : job->input_len * 4 + 64;
  job->output = malloc(cap);
  if (!job->output) { job->error = BZ_MEM_ERROR; return; }
  size_t consumed = 0, produced = 0;
  /* Python's bz2.decompress accepts concatenated streams; so do we. */
  while (consumed < job->input_len) {
    bz_stream s;
    memset(&s, 0, sizeof s);
    int rc = BZ2_bzDecompressInit(&s, 0, 0);
    if (rc != BZ_OK) { job->error = rc; return; }
    s.next_in = (char *)job->input + consumed;
    s.avail_in = (unsigned int)(job->input_len - consumed);
    for (;;) {
      if (produced == cap) {
        if (limit > 0) { BZ2_bzDecompressEnd(&s); job->error = BZ_OUTBUFF_FULL; return; }
        size_t next = cap * 2;
        char *grown = realloc(job->output, next);
        if (!grown) { BZ2_bzDecompressEnd(&s); job->error = BZ_MEM_ERROR; return; }
        job->output = grown;
        cap = next;
      }
      s.next_out = job->output + produced;
      s.avail_out = (unsigned int)(cap - produced);
      rc = BZ2_bzDecompress(&s);
      produced = cap - s.avail_out;
      if (rc == BZ_STREAM_END) break;
      if (rc != BZ_OK) { BZ2_bzDecompressEnd(&s); job->error = rc; return; }
      if (s.avail_in == 0 && s.avail_out > 0) {
        BZ2_bzDecompressEnd(&s);
        job->error = BZ_UNEXPECTED_EOF;
        return;
      }
    }
    consumed = job->input_len - s.avail_in;
    BZ2_bzDecompressEnd(&s);
  }
  if (job->input_len == 0) job->error = BZ_UNEXPECTED_EOF;
  if (limit > 0 && produced > limit) job->error = BZ_OUTBUFF_FULL;
  job->output_len = produced;
}

static void execute(napi_env env, void *data) {
  (void)env;
  Job *job = data;
  job->error = BZ_OK;
  if (job->decompress) run_decompress(job); else run_compress(job);
}

static const char *describe(int code) {
  switch (code) {
    case BZ_MEM_ERROR: return "bzip2: out of memory";
    case BZ_DATA_ERROR: return "bzip2: data integrity error";
    case BZ_DATA_ERROR_MAGIC: return "bzip2: not bzip2 data (bad magic)";
    case BZ_UNEXPECTED_EOF: return "bzip2: compressed data ends before the end of the stream";
    case BZ_OUTBUFF_FULL: return "bzip2: data decompresses to more than the expected length";
    case BZ_PARAM_ERROR: return "bzip2: invalid parameter";
    default: return "bzip2: error";
  }
}

static void free_output(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  free(data);
}

static void complete(napi_env env, napi_status status, void *data) {
  Job *job = data;
  napi_value result;
  if (status == napi_ok && job->error == BZ_OK) {
    if (job->output_len == 0) {
      void *unused;
      free(job->output);
      napi_create_buffer(env, 0, &unused, &result);
    } else {
      napi_create_external_buffer(env, job->output_len, job->output, free_output, NULL, &result);
    }
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    free(job->output);
    napi_value message;
    napi_create_string_utf8(env, describe(job->error), NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &result);
    napi_reject_deferred(env, job->deferred, result);
  }
  napi_delete_reference(env, job->input_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value start(napi_env env, napi_callback_info info, int decompress) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_buffer = false;
  if (argc < 2 || napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer) {
    napi_throw_type_error(env, NULL, "expected (Buffer, number)");
    return NULL;
  }
  Job *job = calloc(1, sizeof *job);
  if (!job) { napi_throw_error(env, NULL, "bzip2: out of memory"); return NULL; }
  void *input;
  napi_get_buffer_info(env, argv[0], &input, &job->input_len);
  /* Node hands a zero-length buffer over as NULL; libbz2 refuses NULL. */
  job->input = input != NULL ? input : "";
  double number = 0;
  napi_get_value_double(env, argv[1], &number);
  job->decompress = decompress;
  if (decompress) job->max_length = number > 0 ? (size_t)number : 0;
  else job->level = (int)number;
  if (job->input_len > 0xFFFFFFFFu - 0x1000000u) {
    free(job);
    napi_throw_range_error(env, NULL, "bzip2: object larger than 4 GiB");
    return NULL;
  }
  napi_create_reference(env, argv[0], 1, &job->input_ref);
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, decompress ? "bz2.decompress" : "bz2.compress", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

static napi_value compress(napi_env env, napi_callback_info info) { return start(env, info, 0); }
static napi_value decompress(napi_env env, napi_callback_info info) { return start(env, info, 1); }

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "compress", NAPI_AUTO_LENGTH, compress, NULL, &fn);
  napi_set_named_property(env, exports, "compress", fn);
  napi_create_function(env, "decompress", NAPI_AUTO_LENGTH, decompress, NULL, &fn);
  napi_set_named_property(env, exports, "decompress", fn);
  return exports;
}
