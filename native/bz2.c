/*
 * bzip2 for chunked-backup: a minimal N-API binding to the system libbz2.
 *
 * Why our own: no npm package compresses bzip2 cleanly (see README). libbz2 is
 * the library Python's bz2 module uses, so the output is byte-identical to
 * Cinder's `bz2.compress(data, 9)`. Work runs on the libuv pool so several
 * objects can be (de)compressed in parallel without blocking the event loop.
 *
 * exports.compress(buffer, level[, stop[, done]]) -> Promise<Buffer>
 * exports.decompress(buffer, maxLength[, stop[, done]]) -> Promise<Buffer>  (multi-stream;
 *   fails rather than produce more than maxLength bytes, when maxLength > 0)
 *
 * `stop`, an Int32Array (in shared memory), lets another thread stop a job:
 * the work runs in steps of STEP bytes and gives up once stop[0] is not 0. A
 * worker thread cannot be terminated while its async work runs, and a 50 MiB
 * chunk takes bzip2 seconds; with steps, a cancelled backup stops at once.
 * `done`, a BigInt64Array (in shared memory), gets each step's bytes (of input
 * when compressing, of output when decompressing) added to done[0], so that
 * another thread can show progress within an object.
 */
#include <bzlib.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of input (compress) or output (decompress) between two looks at `stop`. */
#define STEP (1u << 20)
#define JOB_STOPPED (-100)

typedef struct {
  napi_async_work work;
  napi_ref stop_ref;
  const volatile int32_t *stop;
  napi_ref done_ref;
  int64_t *done;
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

static int stopped(const Job *job) {
  return job->stop != NULL && __atomic_load_n(job->stop, __ATOMIC_RELAXED) != 0;
}

static void count(const Job *job, size_t bytes) {
  if (job->done != NULL) __atomic_fetch_add(job->done, (int64_t)bytes, __ATOMIC_RELAXED);
}

/*
 * The stream fed STEP bytes at a time (BZ_RUN), then finished: the same bytes
 * as BZ2_bzBuffToBuffCompress, since bzip2 cuts blocks by their content, not
 * by how the input arrives.
 */
static void run_compress(Job *job) {
  /* bzip2's documented worst case: 1% + 600 bytes larger than the input. */
  size_t cap = job->input_len + job->input_len / 100 + 600;
  job->output = malloc(cap);
  if (!job->output) { job->error = BZ_MEM_ERROR; return; }
  bz_stream s;
  memset(&s, 0, sizeof s);
  int rc = BZ2_bzCompressInit(&s, job->level, 0, 0);
  if (rc != BZ_OK) { job->error = rc; return; }
  s.next_out = job->output;
  s.avail_out = (unsigned int)cap;
  size_t fed = 0;
  while (fed < job->input_len) {
    if (stopped(job)) { BZ2_bzCompressEnd(&s); job->error = JOB_STOPPED; return; }
    size_t step = job->input_len - fed < STEP ? job->input_len - fed : STEP;
    s.next_in = (char *)job->input + fed;
    s.avail_in = (unsigned int)step;
    while (s.avail_in > 0) {
      if (s.avail_out == 0) { BZ2_bzCompressEnd(&s); job->error = BZ_OUTBUFF_FULL; return; }
      rc = BZ2_bzCompress(&s, BZ_RUN);
      if (rc != BZ_RUN_OK) { BZ2_bzCompressEnd(&s); job->error = rc < 0 ? rc : BZ_OUTBUFF_FULL; return; }
    }
    fed += step;
    count(job, step);
  }
  do {
    rc = BZ2_bzCompress(&s, BZ_FINISH);
    if (rc != BZ_FINISH_OK && rc != BZ_STREAM_END) { BZ2_bzCompressEnd(&s); job->error = rc < 0 ? rc : BZ_OUTBUFF_FULL; return; }
  } while (rc != BZ_STREAM_END);
  job->output_len = cap - s.avail_out;
  BZ2_bzCompressEnd(&s);
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
      if (stopped(job)) { BZ2_bzDecompressEnd(&s); job->error = JOB_STOPPED; return; }
      s.next_out = job->output + produced;
      s.avail_out = (unsigned int)(cap - produced < STEP ? cap - produced : STEP);
      char *before = s.next_out;
      rc = BZ2_bzDecompress(&s);
      produced += (size_t)(s.next_out - before);
      count(job, (size_t)(s.next_out - before));
      if (rc == BZ_STREAM_END) break;
      if (rc != BZ_OK) { BZ2_bzDecompressEnd(&s); job->error = rc; return; }
      if (s.avail_in == 0 && s.avail_out > 0 && produced < cap) {
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
    case JOB_STOPPED: return "bzip2: stopped";
    default: return "bzip2: error";
  }
}

static void free_output(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  free(data);
}

static void complete(napi_env env, napi_status status, void *data) {
  Job *job = data;
  napi_value result = NULL;
  if (status == napi_ok && job->error == BZ_OK) {
    if (job->output_len == 0) {
      void *unused;
      free(job->output);
      napi_create_buffer(env, 0, &unused, &result);
    } else {
      /* Refused while the worker is being terminated: the memory is ours to free. */
      if (napi_create_external_buffer(env, job->output_len, job->output, free_output, NULL, &result) != napi_ok) free(job->output);
    }
    /* A NULL result (a worker being terminated) is refused by napi_resolve_deferred, never dereferenced. */
    if (result != NULL) napi_resolve_deferred(env, job->deferred, result);
  } else {
    free(job->output);
    napi_value message = NULL;
    napi_create_string_utf8(env, describe(job->error), NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &result);
    if (result != NULL) napi_reject_deferred(env, job->deferred, result);
  }
  napi_delete_reference(env, job->input_ref);
  if (job->stop_ref != NULL) napi_delete_reference(env, job->stop_ref);
  if (job->done_ref != NULL) napi_delete_reference(env, job->done_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

/* The data of a non-empty typed array of `want`'s type, in *data; false when `value` is not one. */
static bool typed_array(napi_env env, napi_value value, napi_typedarray_type want, void **data) {
  bool is_typedarray = false;
  napi_typedarray_type type;
  size_t length;
  return napi_is_typedarray(env, value, &is_typedarray) == napi_ok && is_typedarray &&
         napi_get_typedarray_info(env, value, &type, &length, data, NULL, NULL) == napi_ok && type == want && length >= 1;
}

static napi_value start(napi_env env, napi_callback_info info, int decompress) {
  size_t argc = 4;
  napi_value argv[4];
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
  void *stop = NULL, *done = NULL;
  if ((argc >= 3 && !typed_array(env, argv[2], napi_int32_array, &stop)) ||
      (argc >= 4 && !typed_array(env, argv[3], napi_bigint64_array, &done))) {
    free(job);
    napi_throw_type_error(env, NULL, "bzip2: stop must be an Int32Array and done a BigInt64Array");
    return NULL;
  }
  if (stop != NULL) {
    job->stop = stop;
    napi_create_reference(env, argv[2], 1, &job->stop_ref);
  }
  if (done != NULL) {
    job->done = done;
    napi_create_reference(env, argv[3], 1, &job->done_ref);
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
