// src/api/c_api.cpp — the extern "C" layer: translates simdattn::Error into status codes and a
// thread-local message. Nothing thrown below escapes it.
#include "simdattn/simdattn.h"

#include <cstring>
#include <memory>
#include <exception>
#include <new>
#include <string>

#include "simdattn/simdattn.hpp"

// A MultiHeadAttention or a LlamaAttention: the C API's functions use the common interface.
struct simdattn_mha {
  std::unique_ptr<simdattn::AttentionModule> module;
};

struct simdattn_kv_cache {
  simdattn::KVCache cache;
};

namespace {

thread_local std::string g_last_error;

simdattn_status status_of(simdattn::ErrorCode code) {
  switch (code) {
    case simdattn::ErrorCode::invalid_argument: return SIMDATTN_ERROR_INVALID_ARGUMENT;
    case simdattn::ErrorCode::io: return SIMDATTN_ERROR_IO;
    case simdattn::ErrorCode::format: return SIMDATTN_ERROR_FORMAT;
    case simdattn::ErrorCode::unsupported: return SIMDATTN_ERROR_UNSUPPORTED;
    case simdattn::ErrorCode::capacity: return SIMDATTN_ERROR_CAPACITY;
  }
  return SIMDATTN_ERROR_INTERNAL;
}

// Runs fn, mapping every exception onto a status and the thread's last-error message.
template <class Fn>
simdattn_status guarded(Fn&& fn) noexcept {
  try {
    fn();
    g_last_error.clear();
    return SIMDATTN_OK;
  } catch (const simdattn::Error& e) {
    g_last_error = e.what();
    return status_of(e.code());
  } catch (const std::bad_alloc&) {
    g_last_error = "out of memory";
    return SIMDATTN_ERROR_INTERNAL;
  } catch (const std::exception& e) {
    g_last_error = e.what();
    return SIMDATTN_ERROR_INTERNAL;
  } catch (...) {
    g_last_error = "unknown error";
    return SIMDATTN_ERROR_INTERNAL;
  }
}

void require(bool ok, const char* message) {
  if (!ok) throw simdattn::Error(simdattn::ErrorCode::invalid_argument, message);
}

simdattn::Tensor input_tensor(const simdattn_mha* mha, const float* x, int64_t batch,
                              int64_t tokens) {
  require(x != nullptr, "simdattn_mha_forward: x must not be null");
  require(batch >= 1 && tokens >= 1, "simdattn_mha_forward: batch and tokens must be >= 1");
  const std::vector<std::int64_t> shape{batch, tokens, mha->module->d_in()};
  const std::int64_t n = simdattn::checked_numel(shape, "simdattn_mha_forward: x");
  return simdattn::Tensor(shape, std::vector<float>(x, x + n));
}

}  // namespace

extern "C" {

const char* simdattn_last_error(void) { return g_last_error.c_str(); }

simdattn_status simdattn_set_isa(const char* isa) {
  return guarded([&] {
    require(isa != nullptr, "simdattn_set_isa: isa must not be null");
    simdattn::set_isa(simdattn::parse_isa(isa));
  });
}

simdattn_status simdattn_set_num_threads(int n) {
  return guarded([&] { simdattn::set_num_threads(n); });
}

simdattn_status simdattn_mha_create(const char* weights_path, int64_t d_in, int64_t d_out,
                                    int64_t context_length, int64_t num_heads, int qkv_bias,
                                    simdattn_mha** out) {
  return guarded([&] {
    require(out != nullptr, "simdattn_mha_create: out must not be null");
    *out = nullptr;
    require(weights_path != nullptr, "simdattn_mha_create: weights_path must not be null");
    auto* mha = new simdattn_mha{std::make_unique<simdattn::MultiHeadAttention>(
        d_in, d_out, context_length, 0.0, num_heads, qkv_bias != 0)};
    try {
      mha->module->load_state_dict(simdattn::load_safetensors(weights_path));
    } catch (...) {
      delete mha;
      throw;
    }
    *out = mha;
  });
}

simdattn_status simdattn_mha_create_gpt2(const char* checkpoint_path, int64_t layer,
                                         int64_t num_heads, int64_t context_length,
                                         simdattn_mha** out) {
  return guarded([&] {
    require(out != nullptr, "simdattn_mha_create_gpt2: out must not be null");
    *out = nullptr;
    require(checkpoint_path != nullptr,
            "simdattn_mha_create_gpt2: checkpoint_path must not be null");
    const simdattn::TensorMap checkpoint = simdattn::load_safetensors(checkpoint_path);
    const std::int64_t d = simdattn::gpt2_model_dim(checkpoint, layer);
    auto* mha = new simdattn_mha{
        std::make_unique<simdattn::MultiHeadAttention>(d, d, context_length, 0.0, num_heads, true)};
    try {
      mha->module->load_state_dict(simdattn::gpt2_attention_state_dict(checkpoint, layer));
    } catch (...) {
      delete mha;
      throw;
    }
    *out = mha;
  });
}

void simdattn_mha_destroy(simdattn_mha* mha) { delete mha; }

simdattn_status simdattn_mha_set_weight_storage(simdattn_mha* mha, const char* dtype) {
  return guarded([&] {
    require(mha != nullptr, "simdattn_mha_set_weight_storage: mha must not be null");
    require(dtype != nullptr, "simdattn_mha_set_weight_storage: dtype must not be null");
    mha->module->set_weight_storage(simdattn::parse_dtype(dtype));
  });
}

int64_t simdattn_mha_weight_bytes(const simdattn_mha* mha) {
  return mha ? mha->module->weight_bytes() : 0;
}

int64_t simdattn_mha_d_in(const simdattn_mha* mha) { return mha ? mha->module->d_in() : 0; }
int64_t simdattn_mha_d_out(const simdattn_mha* mha) {
  return mha ? mha->module->output_dim() : 0;
}

simdattn_status simdattn_mha_forward(const simdattn_mha* mha, const float* x, int64_t batch,
                                     int64_t tokens, float* y) {
  return guarded([&] {
    require(mha != nullptr, "simdattn_mha_forward: mha must not be null");
    require(y != nullptr, "simdattn_mha_forward: y must not be null");
    const simdattn::Tensor out = mha->module->forward(input_tensor(mha, x, batch, tokens));
    std::memcpy(y, out.data(), sizeof(float) * static_cast<std::size_t>(out.numel()));
  });
}

simdattn_status simdattn_kv_cache_create(const simdattn_mha* mha, int64_t batch,
                                         int64_t capacity, int sliding_window,
                                         simdattn_kv_cache** out) {
  return guarded([&] {
    require(out != nullptr, "simdattn_kv_cache_create: out must not be null");
    *out = nullptr;
    require(mha != nullptr, "simdattn_kv_cache_create: mha must not be null");
    *out = new simdattn_kv_cache{
        simdattn::KVCache(*mha->module, batch, capacity, sliding_window != 0)};
  });
}

simdattn_status simdattn_kv_cache_create_typed(const simdattn_mha* mha, int64_t batch,
                                               int64_t capacity, int sliding_window,
                                               const char* kv_dtype, simdattn_kv_cache** out) {
  return guarded([&] {
    require(out != nullptr, "simdattn_kv_cache_create_typed: out must not be null");
    *out = nullptr;
    require(mha != nullptr, "simdattn_kv_cache_create_typed: mha must not be null");
    require(kv_dtype != nullptr, "simdattn_kv_cache_create_typed: kv_dtype must not be null");
    const simdattn::DType type = simdattn::parse_dtype(kv_dtype);
    *out = new simdattn_kv_cache{
        simdattn::KVCache(*mha->module, batch, capacity, sliding_window != 0, type)};
  });
}

int64_t simdattn_kv_cache_bytes(const simdattn_kv_cache* cache) {
  return cache ? cache->cache.bytes() : 0;
}

void simdattn_kv_cache_destroy(simdattn_kv_cache* cache) { delete cache; }

void simdattn_kv_cache_reset(simdattn_kv_cache* cache) {
  if (cache) cache->cache.reset();
}

int64_t simdattn_kv_cache_length(const simdattn_kv_cache* cache) {
  return cache ? cache->cache.length() : 0;
}

simdattn_status simdattn_kv_cache_truncate(simdattn_kv_cache* cache, int64_t tokens) {
  return guarded([&] {
    require(cache != nullptr, "simdattn_kv_cache_truncate: cache must not be null");
    cache->cache.truncate(tokens);
  });
}

simdattn_status simdattn_mha_forward_cached(const simdattn_mha* mha, simdattn_kv_cache* cache,
                                            const float* x, int64_t batch, int64_t tokens,
                                            float* y) {
  return guarded([&] {
    require(mha != nullptr, "simdattn_mha_forward_cached: mha must not be null");
    require(cache != nullptr, "simdattn_mha_forward_cached: cache must not be null");
    require(y != nullptr, "simdattn_mha_forward_cached: y must not be null");
    const simdattn::Tensor out =
        mha->module->forward(input_tensor(mha, x, batch, tokens), cache->cache);
    std::memcpy(y, out.data(), sizeof(float) * static_cast<std::size_t>(out.numel()));
  });
}

simdattn_status simdattn_llama_create(const char* checkpoint_path, int64_t layer,
                                      int64_t num_heads, int64_t num_kv_heads,
                                      int64_t context_length, const char* rope, double rope_theta,
                                      simdattn_mha** out) {
  return guarded([&] {
    const char* who = "simdattn_llama_create";
    require(out != nullptr, "simdattn_llama_create: out must not be null");
    *out = nullptr;
    require(checkpoint_path != nullptr, "simdattn_llama_create: checkpoint_path must not be null");
    require(rope != nullptr, "simdattn_llama_create: rope must not be null");
    require(num_heads >= 1, "simdattn_llama_create: num_heads must be >= 1");
    const simdattn::TensorMap file = simdattn::load_safetensors(checkpoint_path);
    const simdattn::TensorMap state =
        layer >= 0 ? simdattn::hf_attention_state_dict(file, layer) : file;
    const auto q = state.find("q_proj.weight");
    if (q == state.end() || q->second.rank() != 2)
      throw simdattn::Error(simdattn::ErrorCode::invalid_argument,
                            std::string(who) + ": no 2-D q_proj.weight in " + checkpoint_path);
    const std::int64_t d = q->second.dim(1);
    if (q->second.dim(0) % num_heads != 0)
      throw simdattn::Error(simdattn::ErrorCode::invalid_argument,
                            std::string(who) + ": q_proj.weight's rows (" +
                                std::to_string(q->second.dim(0)) + ") are not a multiple of num_heads (" +
                                std::to_string(num_heads) + ")");
    const std::int64_t head_dim = q->second.dim(0) / num_heads;
    auto* mha = new simdattn_mha{std::make_unique<simdattn::LlamaAttention>(
        d, num_heads, num_kv_heads, head_dim, context_length, simdattn::parse_rope(rope),
        rope_theta, state.count("q_proj.bias") != 0, state.count("o_proj.bias") != 0)};
    try {
      // A half-precision checkpoint stays in its type.
      mha->module->set_weight_storage(simdattn::safetensors_storage(checkpoint_path));
      mha->module->load_state_dict(state);
    } catch (...) {
      delete mha;
      throw;
    }
    *out = mha;
  });
}

simdattn_status simdattn_mha_forward_batch(const simdattn_mha* mha,
                                           simdattn_kv_cache* const* caches,
                                           const int64_t* tokens, int64_t count, const float* x,
                                           float* y) {
  return guarded([&] {
    const char* who = "simdattn_mha_forward_batch";
    require(mha != nullptr, "simdattn_mha_forward_batch: mha must not be null");
    require(caches != nullptr && tokens != nullptr,
            "simdattn_mha_forward_batch: caches and tokens must not be null");
    require(x != nullptr && y != nullptr, "simdattn_mha_forward_batch: x and y must not be null");
    require(count >= 1, "simdattn_mha_forward_batch: count must be >= 1");
    // Per-thread, grow-only: a steady decode loop allocates no step list.
    thread_local std::vector<simdattn::AttentionModule::SequenceStep> steps;
    steps.clear();
    std::int64_t rows = 0;
    for (std::int64_t i = 0; i < count; ++i) {
      if (caches[i] == nullptr)
        throw simdattn::Error(simdattn::ErrorCode::invalid_argument,
                              std::string(who) + ": caches[" + std::to_string(i) + "] is null");
      if (tokens[i] < 1)
        throw simdattn::Error(simdattn::ErrorCode::invalid_argument,
                              std::string(who) + ": tokens[" + std::to_string(i) + "] must be >= 1");
      steps.push_back({&caches[i]->cache, tokens[i]});
      rows += tokens[i];
    }
    const std::vector<std::int64_t> shape{rows, mha->module->d_in()};
    const std::int64_t n = simdattn::checked_numel(shape, "simdattn_mha_forward_batch: x");
    simdattn::Tensor out;
    mha->module->forward_batch(simdattn::Tensor(shape, std::vector<float>(x, x + n)), steps, out);
    std::memcpy(y, out.data(), sizeof(float) * static_cast<std::size_t>(out.numel()));
  });
}

}  // extern "C"
