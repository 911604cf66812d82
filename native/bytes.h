/* Shared by the project's addons: the bytes of a Uint8Array argument. */
#ifndef CHUNKED_BACKUP_BYTES_H
#define CHUNKED_BACKUP_BYTES_H
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>

/* Data pointer and length of a Uint8Array (also over a SharedArrayBuffer); 0 for anything else. */
static inline int bytes_of(napi_env env, napi_value value, unsigned char **data, size_t *length) {
  bool is_typedarray = false;
  if (napi_is_typedarray(env, value, &is_typedarray) != napi_ok || !is_typedarray) return 0;
  napi_typedarray_type type;
  void *pointer;
  size_t elements;
  if (napi_get_typedarray_info(env, value, &type, &elements, &pointer, NULL, NULL) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  *data = pointer;
  *length = elements;
  return 1;
}
#endif
