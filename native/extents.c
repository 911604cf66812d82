/*
 * The data extents of an open file: where it holds data rather than holes.
 *
 * exports.dataExtents(fd, size) -> [start0, end0, start1, end1, ...]
 *
 * Why: a thin (sparse) volume's holes read as zeros; knowing them, a backup
 * need not read them. lseek(SEEK_DATA/SEEK_HOLE) asks the file system; Node
 * has no binding for it. A file system without hole tracking (and a block
 * device) reports one extent, the whole file: never less data than there is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <node_api.h>
#include <string.h>
#include <unistd.h>

static napi_value fail(napi_env env, const char *what, int error) {
  char message[160];
  snprintf(message, sizeof message, "%s: %s", what, strerror(error));
  napi_throw_error(env, error == EBADF ? "EBADF" : NULL, message);
  return NULL;
}

static napi_value data_extents(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  int64_t size = 0;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &size) != napi_ok || fd < 0 || size < 0) {
    napi_throw_type_error(env, NULL, "dataExtents(fd, size): a descriptor and a size");
    return NULL;
  }
  napi_value result = NULL;
  napi_create_array(env, &result);
  uint32_t n = 0;
  off_t at = 0;
  while (at < size) {
    off_t start = lseek(fd, at, SEEK_DATA);
    if (start < 0) {
      if (errno == ENXIO) break; /* no data from `at` to the end */
      if (errno == EINVAL) { start = at; } /* no hole tracking here: all data */
      else return fail(env, "lseek(SEEK_DATA)", errno);
    }
    if (start >= size) break;
    off_t end = lseek(fd, start, SEEK_HOLE);
    if (end < 0) {
      if (errno == EINVAL) end = size;
      else return fail(env, "lseek(SEEK_HOLE)", errno);
    }
    if (end > size) end = size;
    napi_value value = NULL;
    napi_create_int64(env, start, &value);
    napi_set_element(env, result, n++, value);
    napi_create_int64(env, end, &value);
    napi_set_element(env, result, n++, value);
    at = end;
  }
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "dataExtents", NAPI_AUTO_LENGTH, data_extents, NULL, &fn);
  napi_set_named_property(env, exports, "dataExtents", fn);
  return exports;
}
