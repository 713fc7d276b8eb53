/* simdattn/simdattn.h — the C API: MultiHeadAttention from safetensors weights (book names or
 * one GPT-2 layer) or LlamaAttention from a Hugging Face layer, forward, KV-cache
 * prefill/decode, and batched decode of many sequences, for programs in other languages.
 *
 * Every function returns a simdattn_status; on failure, simdattn_last_error() returns a
 * message for the calling thread (valid until that thread's next call). No C++ exception
 * crosses this boundary. Thread safety as in C++: simdattn_mha_forward* may run concurrently on
 * one module, each call with its own output and cache; a cache serves one call at a time.
 *
 *   simdattn_mha* mha = NULL;
 *   if (simdattn_mha_create_gpt2("model.safetensors", 0, 12, 1024, &mha) != SIMDATTN_OK) {
 *     fprintf(stderr, "%s\n", simdattn_last_error());
 *     return 1;
 *   }
 *   simdattn_mha_forward(mha, x, 1, T, y);   // x [1, T, d], y [1, T, d]
 *   simdattn_mha_destroy(mha);
 */
#ifndef SIMDATTN_SIMDATTN_H
#define SIMDATTN_SIMDATTN_H

#include <stdint.h>

#include "simdattn/export.h"
#include "simdattn/version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum simdattn_status {
  SIMDATTN_OK = 0,
  SIMDATTN_ERROR_INVALID_ARGUMENT = 1, /* a size, shape, pointer or option out of range */
  SIMDATTN_ERROR_IO = 2,               /* a file could not be read or written */
  SIMDATTN_ERROR_FORMAT = 3,           /* a malformed safetensors file */
  SIMDATTN_ERROR_UNSUPPORTED = 4,      /* an ISA not usable on this CPU */
  SIMDATTN_ERROR_CAPACITY = 5,         /* a KV cache is full */
  SIMDATTN_ERROR_INTERNAL = 6          /* out of memory or an unexpected failure */
} simdattn_status;

typedef struct simdattn_mha simdattn_mha;
typedef struct simdattn_kv_cache simdattn_kv_cache;

/* The version of the library linked, "major.minor.patch" (SIMDATTN_VERSION_STRING is the
 * headers'), and as a number, MAJOR * 10000 + MINOR * 100 + PATCH (SIMDATTN_VERSION_NUMBER). */
SIMDATTN_API const char* simdattn_version(void);
SIMDATTN_API int simdattn_version_number(void);

/* Message of the calling thread's last failure ("" if none). */
SIMDATTN_API const char* simdattn_last_error(void);
/* "sse2", "avx2", "avx512" or "neon": forces that ISA process-wide (SIMDATTN_ERROR_UNSUPPORTED
 * if it is not usable here). */
SIMDATTN_API simdattn_status simdattn_set_isa(const char* isa);
/* n >= 1 threads (clamped to the machine), 0 restores the default. */
SIMDATTN_API simdattn_status simdattn_set_num_threads(int n);

/* MultiHeadAttention(d_in, d_out, context_length, dropout=0, num_heads, qkv_bias), weights
 * loaded from a safetensors file with the book's state_dict() names. */
SIMDATTN_API simdattn_status simdattn_mha_create(const char* weights_path, int64_t d_in,
                                                 int64_t d_out, int64_t context_length,
                                                 int64_t num_heads, int qkv_bias,
                                                 simdattn_mha** out);
/* Layer `layer` of a Hugging Face GPT-2 safetensors checkpoint (d inferred). */
SIMDATTN_API simdattn_status simdattn_mha_create_gpt2(const char* checkpoint_path, int64_t layer,
                                                      int64_t num_heads, int64_t context_length,
                                                      simdattn_mha** out);
SIMDATTN_API void simdattn_mha_destroy(simdattn_mha* mha);
/* How the module stores its projection weights: "f32", "f16", "bf16", "q8_0" or "q4_0" (biases
 * stay f32; arithmetic is f32). Repacks the current weights; SIMDATTN_ERROR_UNSUPPORTED for
 * q8_0 and q4_0 when d_in or d_out is not a multiple of 32, SIMDATTN_ERROR_INVALID_ARGUMENT for an unknown
 * name or a weight the type cannot hold. The module is unchanged on error. */
SIMDATTN_API simdattn_status simdattn_mha_set_weight_storage(simdattn_mha* mha, const char* dtype);
/* Bytes held for the weights (packed matrices plus f32 biases); 0 for NULL. */
SIMDATTN_API int64_t simdattn_mha_weight_bytes(const simdattn_mha* mha);
/* Feature sizes: input d_in and output d_out. */
SIMDATTN_API int64_t simdattn_mha_d_in(const simdattn_mha* mha);
SIMDATTN_API int64_t simdattn_mha_d_out(const simdattn_mha* mha);

/* y[batch, tokens, d_out] = MHA(x[batch, tokens, d_in]) in inference mode. */
SIMDATTN_API simdattn_status simdattn_mha_forward(const simdattn_mha* mha, const float* x,
                                                  int64_t batch, int64_t tokens, float* y);

/* A cache for `batch` sequences of up to `capacity` tokens (0: the context length). With
 * sliding_window != 0 the oldest tokens are dropped instead of failing when it is full. */
SIMDATTN_API simdattn_status simdattn_kv_cache_create(const simdattn_mha* mha, int64_t batch,
                                                      int64_t capacity, int sliding_window,
                                                      simdattn_kv_cache** out);
/* The same with keys and values stored as kv_dtype: "f32", "f16", "bf16" or "q8_0" (q8_0
 * needs head_dim % 32 == 0: SIMDATTN_ERROR_UNSUPPORTED otherwise, as for "q4_0", a weight
 * type only). */
SIMDATTN_API simdattn_status simdattn_kv_cache_create_typed(const simdattn_mha* mha,
                                                            int64_t batch, int64_t capacity,
                                                            int sliding_window,
                                                            const char* kv_dtype,
                                                            simdattn_kv_cache** out);
/* Bytes held for keys and values (the preallocated capacity); 0 for NULL. */
SIMDATTN_API int64_t simdattn_kv_cache_bytes(const simdattn_kv_cache* cache);
SIMDATTN_API void simdattn_kv_cache_destroy(simdattn_kv_cache* cache);
SIMDATTN_API void simdattn_kv_cache_reset(simdattn_kv_cache* cache);
SIMDATTN_API int64_t simdattn_kv_cache_length(const simdattn_kv_cache* cache);
/* Forgets the `tokens` most recent tokens (0 <= tokens <= length), e.g. rejected speculative
 * tokens; SIMDATTN_ERROR_INVALID_ARGUMENT otherwise, with nothing changed. */
SIMDATTN_API simdattn_status simdattn_kv_cache_truncate(simdattn_kv_cache* cache, int64_t tokens);

/* Appends `tokens` new tokens per sequence (a prompt for prefill, 1 for a decode step) and
 * writes their outputs: x [batch, tokens, d_in] -> y [batch, tokens, d_out]. */
SIMDATTN_API simdattn_status simdattn_mha_forward_cached(const simdattn_mha* mha,
                                                         simdattn_kv_cache* cache, const float* x,
                                                         int64_t batch, int64_t tokens, float* y);

/* A Llama-family attention layer (simdattn::LlamaAttention: grouped-query attention with
 * num_kv_heads K/V heads, rotary embedding "halves", "interleaved" or "none" with rope_theta)
 * from a Hugging Face checkpoint's layer `layer` (model.layers.{layer}.self_attn.*), or with
 * layer < 0 from a file holding q_proj.weight, ... directly. d_model and head_dim come from
 * q_proj.weight and num_heads, the biases are used when present, and an F16 or BF16 file keeps
 * its type. The handle works with every simdattn_mha_* and simdattn_kv_cache_* function. */
SIMDATTN_API simdattn_status simdattn_llama_create(const char* checkpoint_path, int64_t layer,
                                                  int64_t num_heads, int64_t num_kv_heads,
                                                  int64_t context_length, const char* rope,
                                                  double rope_theta, simdattn_mha** out);

/* One step of `count` sequences, each through its own cache (batch 1): sequence i appends
 * tokens[i] tokens. x holds their rows back to back ([sum tokens, d_in], sequence 0 first) and
 * y receives [sum tokens, d_out] in the same order. Each sequence gets the bits it would get
 * alone. Nothing changes on error (a shared or full cache, a cache of another module). */
SIMDATTN_API simdattn_status simdattn_mha_forward_batch(const simdattn_mha* mha,
                                                       simdattn_kv_cache* const* caches,
                                                       const int64_t* tokens, int64_t count,
                                                       const float* x, float* y);

#ifdef __cplusplus
}
#endif

#endif /* SIMDATTN_SIMDATTN_H */
