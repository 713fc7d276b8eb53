// tests/support/test_data.hpp — helpers the data-driven tests share: the safetensors cases in a
// folder, a file's "__metadata__" strings (the library's loader does not expose them), and a
// small deterministic random tensor.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "simdattn/tensor.hpp"

namespace simdattn::test {

/// Stems of the *.safetensors files in `dir`, sorted (empty if the folder is missing).
inline std::vector<std::string> safetensors_stems(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ".safetensors") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

/// The "__metadata__" strings of a safetensors file.
inline std::map<std::string, std::string> read_metadata(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char len_bytes[8] = {};
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  std::uint64_t len = 0;
  for (int i = 7; i >= 0; --i) len = (len << 8) | len_bytes[i];
  if (!in || len > (1u << 20)) throw std::runtime_error(path.string() + ": bad header length");
  std::string header(static_cast<std::size_t>(len), '\0');
  in.read(header.data(), static_cast<std::streamsize>(len));
  return nlohmann::json::parse(header).at("__metadata__").get<std::map<std::string, std::string>>();
}

/// Values in [-1, 1) from a 32-bit LCG: the same on every platform and standard library.
inline Tensor lcg_tensor(std::vector<std::int64_t> shape, std::uint32_t seed) {
  std::size_t n = 1;
  for (std::int64_t e : shape) n *= static_cast<std::size_t>(e);
  std::vector<float> v(n);
  for (float& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>(seed >> 8) / 16777216.0f * 2.0f - 1.0f;
  }
  return Tensor(std::move(shape), std::move(v));
}

}  // namespace simdattn::test
