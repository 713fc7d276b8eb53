/* Embeds simdattn through its C API: loads MultiHeadAttention weights from a safetensors file
 * (argv[1], book names, d_in = d_out = 8, 2 heads, qkv_bias), runs a forward, then the same
 * tokens through a KV cache and checks they agree, rewinds the cache by one token and decodes
 * it again; also checks that a bad call reports an error instead of crashing and that the
 * library's version is the headers'. It uses no libm, so
 * `cc consumer.c $(pkg-config --cflags --libs simdattn)` is the whole build line. */
#include <stdio.h>
#include <stdlib.h>

#include <simdattn/simdattn.h>

#define D 8
#define T 5

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: consumer_c weights.safetensors\n");
    return 2;
  }
  simdattn_mha* mha = NULL;
  if (simdattn_mha_create(argv[1], D, D, 16, 2, 1, &mha) != SIMDATTN_OK) {
    fprintf(stderr, "consumer_c: %s\n", simdattn_last_error());
    return 1;
  }
  float x[T * D], y[T * D], step[D];
  for (int i = 0; i < T * D; ++i) x[i] = (float)((i * 7) % 13 - 6) / 8.0f;
  if (simdattn_mha_forward(mha, x, 1, T, y) != SIMDATTN_OK) {
    fprintf(stderr, "consumer_c: %s\n", simdattn_last_error());
    return 1;
  }
  simdattn_kv_cache* cache = NULL;
  if (simdattn_kv_cache_create(mha, 1, 0, 0, &cache) != SIMDATTN_OK) {
    fprintf(stderr, "consumer_c: %s\n", simdattn_last_error());
    return 1;
  }
  double max_diff = 0.0;
  for (int t = 0; t < T; ++t) {
    if (simdattn_mha_forward_cached(mha, cache, x + t * D, 1, 1, step) != SIMDATTN_OK) {
      fprintf(stderr, "consumer_c: %s\n", simdattn_last_error());
      return 1;
    }
    for (int j = 0; j < D; ++j) {
      const double diff = step[j] > y[t * D + j] ? step[j] - y[t * D + j] : y[t * D + j] - step[j];
      if (!(diff <= max_diff)) max_diff = diff; /* a NaN sticks, and fails the check below */
    }
  }
  /* Rewind the last token and decode it again: the same output. Too long a rewind is an
   * error that changes nothing. */
  float again[D];
  int rewound = simdattn_kv_cache_truncate(cache, T + 1) == SIMDATTN_ERROR_INVALID_ARGUMENT &&
                simdattn_kv_cache_length(cache) == T &&
                simdattn_kv_cache_truncate(cache, 1) == SIMDATTN_OK &&
                simdattn_kv_cache_length(cache) == T - 1 &&
                simdattn_mha_forward_cached(mha, cache, x + (T - 1) * D, 1, 1, again) ==
                    SIMDATTN_OK;
  for (int j = 0; rewound && j < D; ++j) rewound = again[j] == step[j];
  if (!rewound) fprintf(stderr, "consumer_c: truncate and re-decode failed: %s\n",
                        simdattn_last_error());
  /* Errors come back as status codes with a message, never as a crash. */
  simdattn_status bad = simdattn_mha_forward(mha, NULL, 1, T, y);
  int ok = rewound && bad == SIMDATTN_ERROR_INVALID_ARGUMENT && simdattn_last_error()[0] != '\0';
  /* The library linked is the one these headers describe. */
  int same_version = simdattn_version_number() == SIMDATTN_VERSION_NUMBER;
  printf("consumer_c: simdattn %s (headers %s), length %lld, max |full - cached| = %.3g, "
         "null input -> %d (%s)\n", simdattn_version(), SIMDATTN_VERSION_STRING,
         (long long)simdattn_kv_cache_length(cache), max_diff, (int)bad, simdattn_last_error());
  simdattn_kv_cache_destroy(cache);
  simdattn_mha_destroy(mha);
  return (ok && same_version && max_diff <= 1e-4) ? 0 : 1;
}
