/*
 * gzip members made by libdeflate, on libuv's thread pool: the binding behind gzipLayer's fast path
 * (packages/uploader/src/compress/libdeflate.ts). libdeflate compresses a whole buffer at once, 1.5-2x faster
 * than zlib at the same output size (docs/benchmarks.md), which is how gzipLayer cuts its input anyway.
 *
 *   gzip(input: Buffer, level: 1..12): Promise<Buffer>   one gzip member of input
 *   crc32(input: Buffer, crc: number): number            the CRC-32 of input, continuing crc (2x zlib's speed
 *                                                        here: libdeflate folds with the CPU's carry-less multiply)
 *
 * Node-API only (no V8 or Node internals), so one build loads in every Node.js from 20 on.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <libdeflate.h>
#include <stdlib.h>

#define MAX_LEVEL 12

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref input_ref; /* keeps the input alive (and unmoved: Buffer memory never moves) while a thread reads it */
  const void *input;
  size_t input_length;
  int level;
  void *output;
  size_t output_length;
} Job;

/* A compressor per level per pool thread: each is used by one thread at a time, and made once. */
static __thread struct libdeflate_compressor *compressors[MAX_LEVEL + 1];

static void execute(napi_env env, void *data) {
  (void)env;
  Job *job = data;
  struct libdeflate_compressor *compressor = compressors[job->level];
  if (compressor == NULL) compressor = compressors[job->level] = libdeflate_alloc_compressor(job->level);
  if (compressor == NULL) return;
  size_t bound = libdeflate_gzip_compress_bound(compressor, job->input_length);
  job->output = malloc(bound);
  if (job->output == NULL) return;
  job->output_length = libdeflate_gzip_compress(compressor, job->input, job->input_length, job->output, bound);
}

static void complete(napi_env env, napi_status status, void *data) {
  Job *job = data;
  napi_value result;
  if (status == napi_ok && job->output_length > 0) {
    /* Copied to a buffer of its exact size (a quarter of the input, typically): cheaper than keeping the bound. */
    void *copy;
    napi_create_buffer_copy(env, job->output_length, job->output, &copy, &result);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    napi_value message;
    napi_create_string_utf8(env, "libdeflate could not compress a block: out of memory", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &result);
    napi_reject_deferred(env, job->deferred, result);
  }
  free(job->output);
  napi_delete_reference(env, job->input_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value throw_type_error(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

/* Both functions take (input: Buffer, number): their two arguments, or false with a TypeError thrown. */
static bool buffer_and_number(napi_env env, napi_callback_info info, napi_value argv[2], const char *usage) {
  size_t argc = 2;
  bool is_buffer = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 2) napi_is_buffer(env, argv[0], &is_buffer);
  if (!is_buffer) throw_type_error(env, usage);
  return is_buffer;
}

static napi_value gzip(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!buffer_and_number(env, info, argv, "gzip(input, level) takes a Buffer and a level")) return NULL;
  int32_t level;
  if (napi_get_value_int32(env, argv[1], &level) != napi_ok || level < 1 || level > MAX_LEVEL) return throw_type_error(env, "gzip: level must be a whole number from 1 to 12");

  Job *job = calloc(1, sizeof(Job));
  if (job == NULL) {
    napi_throw_error(env, NULL, "gzip: out of memory");
    return NULL;
  }
  void *input;
  napi_get_buffer_info(env, argv[0], &input, &job->input_length);
  job->input = input;
  job->level = level;
  napi_create_reference(env, argv[0], 1, &job->input_ref);
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "rxpush:libdeflate", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

static napi_value crc32(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!buffer_and_number(env, info, argv, "crc32(input, crc) takes a Buffer and a CRC")) return NULL;
  uint32_t crc;
  if (napi_get_value_uint32(env, argv[1], &crc) != napi_ok) return throw_type_error(env, "crc32: crc must be a number");
  void *input;
  size_t length;
  napi_get_buffer_info(env, argv[0], &input, &length);
  napi_value result;
  napi_create_uint32(env, libdeflate_crc32(crc, input, length), &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "gzip", NAPI_AUTO_LENGTH, gzip, NULL, &fn);
  napi_set_named_property(env, exports, "gzip", fn);
  napi_create_function(env, "crc32", NAPI_AUTO_LENGTH, crc32, NULL, &fn);
  napi_set_named_property(env, exports, "crc32", fn);
  return exports;
}

NAPI_MODULE_INIT() {
  return init(env, exports);
}
