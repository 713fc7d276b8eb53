// simdattn/rope.hpp — rotary position embeddings (RoPE): how a module rotates its queries and
// keys by their absolute position before attention.
#pragma once

#include <string>

#include "simdattn/export.h"

namespace simdattn {

/// Which dimensions of a head form the rotated pairs. Pair i (0 <= i < head_dim / 2) of the
/// token at position p turns by the angle p * theta^(-2i / head_dim).
///   none         no rotation (GPT-2, the book's modules).
///   halves       dimension i with i + head_dim/2: Hugging Face's rotate_half (Llama, Qwen2,
///                Mistral checkpoints on the Hub).
///   interleaved  dimension 2i with 2i + 1: GPT-J pairs, as in Meta's original Llama code.
enum class Rope { none, halves, interleaved };

/// "none", "halves", "interleaved".
SIMDATTN_API const char* rope_name(Rope rope) noexcept;
/// Inverse of rope_name; throws Error(invalid_argument) listing the accepted names.
SIMDATTN_API Rope parse_rope(const std::string& name);

}  // namespace simdattn
