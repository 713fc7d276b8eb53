// src/io/safetensors.cpp — the safetensors reader and writer. The reader validates the whole
// header (and the layout of the data section) before it allocates a single tensor, so a
// malformed or hostile file costs at most its own size in memory and never an out-of-bounds read.
#include "simdattn/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/validate.hpp"

// The format is little-endian and we memcpy raw bytes; a big-endian port would need byte swaps
// in read_u64_le, convert_to_f32 and save_safetensors.
static_assert(std::endian::native == std::endian::little,
              "simdattn's safetensors I/O assumes a little-endian host");
static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559,
              "simdattn's safetensors I/O assumes IEEE-754 binary32 floats");

namespace simdattn {
namespace {

using json = nlohmann::json;

// The same cap as the reference Rust implementation: a real header (a few hundred tensors) is
// tens of kilobytes, and the cap keeps a forged length from making us allocate gigabytes.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
constexpr std::uint64_t kLengthPrefixBytes = 8;
// A valid header nests 3 levels ({name: {shape: [..]}}); the cap stops a header of a million
// brackets from costing a million parser states.
constexpr int kMaxJsonDepth = 64;

enum class FileDType { f32, f16, bf16 };

std::uint64_t dtype_size(FileDType d) { return d == FileDType::f32 ? 4 : 2; }

/// One validated tensor entry of the header.
struct Entry {
  std::string name;
  FileDType dtype = FileDType::f32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  ///< byte offsets relative to the data section
  std::uint64_t end = 0;
};

/// The validated header: where the data section starts, and every tensor sorted by offset.
struct Layout {
  std::uint64_t data_start = 0;
  std::uint64_t data_size = 0;
  std::vector<Entry> entries;
};

/// Builds error messages "<source>: tensor 'w': field 'shape': ...".
class Reporter {
 public:
  explicit Reporter(std::string source) : source_(std::move(source)) {}

  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    detail::fail(ErrorCode::format, source_, ": ", parts...);
  }
  template <class... Parts>
  [[noreturn]] void fail_tensor(const std::string& name, const Parts&... parts) const {
    fail("tensor '", name, "': ", parts...);
  }

 private:
  std::string source_;
};

/// A JSON value for an error message, cut short: a hostile header can hold megabytes in one field.
std::string brief(const json& value) {
  std::string s = value.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::uint64_t read_u64_le(const unsigned char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

/// Checks the 8-byte length prefix against the cap and the file size; returns the header length.
std::uint64_t check_header_length(const unsigned char* prefix, std::uint64_t file_size,
                                  const Reporter& report) {
  if (file_size < kLengthPrefixBytes)
    report.fail("file is ", file_size, " bytes, too short for the 8-byte header length");
  const std::uint64_t n = read_u64_le(prefix);
  if (n > kMaxHeaderBytes)
    report.fail("header length (", n, " bytes) exceeds the limit of ", kMaxHeaderBytes,
                " bytes");
  if (n > file_size - kLengthPrefixBytes)
    report.fail("header length (", n, " bytes) runs past the end of the file (", file_size,
                " bytes, ", file_size - kLengthPrefixBytes, " after the length)");
  if (n == 0) report.fail("header length is 0: the JSON header is missing");
  return n;
}

/// Parses the JSON header, rejecting duplicate keys at any level (nlohmann would silently keep
/// the last one, so two tensors with the same name would otherwise lose one of them).
json parse_json_header(const unsigned char* text, std::size_t size, const Reporter& report) {
  struct Level {
    std::string name;  // the key this object is the value of ("" for the root)
    std::set<std::string> seen;
  };
  struct TooDeep {};
  std::vector<Level> levels;
  std::string last_key;
  std::string duplicate;  // message for the first duplicate found
  int depth = 0;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        levels.push_back(Level{levels.empty() ? std::string() : last_key, {}});
        [[fallthrough]];
      case json::parse_event_t::array_start:
        if (++depth > kMaxJsonDepth) throw TooDeep{};
        break;
      case json::parse_event_t::object_end:
        if (!levels.empty()) levels.pop_back();
        --depth;
        break;
      case json::parse_event_t::array_end:
        --depth;
        break;
      case json::parse_event_t::key:
        if (parsed.is_string() && !levels.empty()) {
          last_key = parsed.get<std::string>();
          if (!levels.back().seen.insert(last_key).second && duplicate.empty()) {
            duplicate = levels.size() == 1
                            ? "tensor '" + last_key + "' appears more than once in the header"
                            : "duplicate key '" + last_key + "' in the entry '" +
                                  levels.back().name + "'";
          }
        }
        break;
      default:
        break;
    }
    return true;
  };
  // JSON never contains a raw NUL, but nlohmann's lexer takes one for the end of input and would
  // accept "{}\0<anything>", hiding bytes from validation.
  if (const void* nul = std::memchr(text, 0, size))
    report.fail("header is not valid JSON: NUL byte at header offset ",
                static_cast<const unsigned char*>(nul) - text);
  json root;
  try {
    root = json::parse(text, text + size, callback);
  } catch (const json::exception& e) {
    report.fail("header is not valid JSON: ", e.what());
  } catch (const TooDeep&) {
    report.fail("header nests JSON deeper than ", kMaxJsonDepth, " levels");
  }
  if (!duplicate.empty()) report.fail(duplicate);
  if (!root.is_object()) report.fail("header must be a JSON object, not ", root.type_name());
  return root;
}

FileDType parse_dtype(const std::string& name, const json& value, const Reporter& report) {
  if (!value.is_string())
    report.fail_tensor(name, "field 'dtype' must be a string, not ", value.type_name());
  const auto& s = value.get_ref<const std::string&>();
  if (s == "F32") return FileDType::f32;
  if (s == "F16") return FileDType::f16;
  if (s == "BF16") return FileDType::bf16;
  report.fail_tensor(name, "dtype '", s, "' is not supported (expected F32, F16 or BF16)");
}

/// A non-negative JSON integer, as uint64.
std::uint64_t parse_count(const std::string& name, const char* field, std::size_t index,
                          const json& value, const Reporter& report) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  // nlohmann stores non-negative literals as unsigned; a signed one is negative or "-0".
  if (value.is_number_integer() && value.get<std::int64_t>() == 0) return 0;
  if (value.is_number_integer())
    report.fail_tensor(name, "field '", field, "' entry ", index, " (", brief(value),
                       ") must be >= 0");
  report.fail_tensor(name, "field '", field, "' entry ", index, " must be an integer, not ",
                     value.is_number() ? brief(value) : std::string(value.type_name()));
}

Entry parse_entry(const std::string& name, const json& value, const Reporter& report) {
  if (!value.is_object())
    report.fail_tensor(name, "entry must be an object, not ", value.type_name());
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!value.contains(field)) report.fail_tensor(name, "field '", field, "' is missing");
  for (const auto& item : value.items())
    if (item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets")
      report.fail_tensor(name, "unexpected field '", item.key(),
                         "' (expected dtype, shape, data_offsets)");

  Entry e;
  e.name = name;
  e.dtype = parse_dtype(name, value["dtype"], report);

  const json& shape = value["shape"];
  if (!shape.is_array())
    report.fail_tensor(name, "field 'shape' must be an array, not ", shape.type_name());
  // Element count with the same left-to-right overflow rule as simdattn::checked_numel, so every
  // shape accepted here is one a Tensor accepts.
  std::uint64_t numel = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const std::uint64_t extent = parse_count(name, "shape", i, shape[i], report);
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (extent > kMax) report.fail_tensor(name, "shape extent ", i, " (", extent, ") is too large");
    e.shape.push_back(static_cast<std::int64_t>(extent));
    if (numel != 0 && extent > kMax / numel)
      report.fail_tensor(name, "element count of shape ", brief(shape), " overflows");
    numel *= extent;
  }
  if (numel > std::numeric_limits<std::uint64_t>::max() / dtype_size(e.dtype) ||
      numel > std::numeric_limits<std::size_t>::max() / sizeof(float))
    report.fail_tensor(name, "shape ", brief(shape), " is too large");
  const std::uint64_t nbytes = numel * dtype_size(e.dtype);

  const json& offsets = value["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2)
    report.fail_tensor(name, "field 'data_offsets' must be an array [begin, end], not ",
                       brief(offsets));
  e.begin = parse_count(name, "data_offsets", 0, offsets[0], report);
  e.end = parse_count(name, "data_offsets", 1, offsets[1], report);
  if (e.begin > e.end)
    report.fail_tensor(name, "data_offsets begin (", e.begin, ") is after end (", e.end, ")");
  if (e.end - e.begin != nbytes)
    report.fail_tensor(name, "data_offsets [", e.begin, ", ", e.end, ") hold ", e.end - e.begin,
                       " bytes but shape ", shape_to_string(e.shape), " of ",
                       value["dtype"].get<std::string>(), " needs ", nbytes);
  return e;
}

/// Validates the header (given its `header_size` JSON bytes) against a file of `file_size` bytes.
Layout parse_layout(const unsigned char* header, std::uint64_t header_size,
                    std::uint64_t file_size, const Reporter& report) {
  const json root = parse_json_header(header, static_cast<std::size_t>(header_size), report);
  Layout layout;
  layout.data_start = kLengthPrefixBytes + header_size;
  layout.data_size = file_size - layout.data_start;

  for (const auto& item : root.items()) {
    if (item.key() == "__metadata__") {
      const json& meta = item.value();
      if (!meta.is_object())
        report.fail("'__metadata__' must be an object, not ", meta.type_name());
      for (const auto& m : meta.items())
        if (!m.value().is_string())
          report.fail("'__metadata__' value of '", m.key(), "' must be a string, not ",
                      m.value().type_name());
      continue;
    }
    Entry e = parse_entry(item.key(), item.value(), report);
    if (e.end > layout.data_size)
      report.fail_tensor(e.name, "data_offsets end (", e.end, ") is past the end of the data (",
                         layout.data_size, " bytes)");
    layout.entries.push_back(std::move(e));
  }

  // The format requires the tensors to tile the data section exactly: no overlap (two tensors
  // aliasing the same bytes), no hole and no trailing bytes (which would let a file hide a second
  // payload). Zero-size tensors sit at the boundary where they are declared.
  std::sort(layout.entries.begin(), layout.entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t expected = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : layout.entries) {
    if (e.begin < expected)
      report.fail_tensor(e.name, "data_offsets [", e.begin, ", ", e.end,
                         ") overlap those of tensor '", previous->name, "' [", previous->begin,
                         ", ", previous->end, ")");
    if (e.begin > expected)
      report.fail_tensor(e.name, "data_offsets begin (", e.begin, ") leaves bytes [", expected,
                         ", ", e.begin, ") of the data section unused (holes are not allowed)");
    expected = e.end;
    previous = &e;
  }
  if (expected != layout.data_size)
    report.fail("data section has ", layout.data_size - expected,
                " trailing bytes after the last tensor (", layout.data_size,
                " bytes, tensors end at ", expected, ")");
  return layout;
}

float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  std::uint32_t bits;
  if (exponent == 0x1f) {
    // Inf, or NaN with its payload (and quiet bit) kept in the top mantissa bits.
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24 is exact in binary32.
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    std::memcpy(&bits, &magnitude, 4);
    bits |= sign;
  } else {
    bits = sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_f32(std::uint16_t b) {
  const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// Converts `count` elements at `src` (any alignment) into `dst`.
void convert_to_f32(FileDType dtype, const unsigned char* src, std::size_t count, float* dst) {
  if (dtype == FileDType::f32) {
    if (count != 0) std::memcpy(dst, src, count * sizeof(float));
    return;
  }
  for (std::size_t i = 0; i < count; ++i) {
    std::uint16_t v;
    std::memcpy(&v, src + 2 * i, 2);
    dst[i] = dtype == FileDType::f16 ? f16_to_f32(v) : bf16_to_f32(v);
  }
}

}  // namespace

TensorMap parse_safetensors(const unsigned char* bytes, std::size_t size,
                            const std::string& what) {
  const Reporter report("parse_safetensors: " + what);
  if (bytes == nullptr && size != 0)
    detail::fail_arg("parse_safetensors: bytes must not be null when size (", size, ") > 0");
  const std::uint64_t header_size = check_header_length(bytes, size, report);
  const Layout layout = parse_layout(bytes + kLengthPrefixBytes, header_size, size, report);

  TensorMap out;
  const unsigned char* data = bytes + layout.data_start;
  for (const Entry& e : layout.entries) {
    Tensor t = Tensor(e.shape);
    convert_to_f32(e.dtype, data + e.begin, t.values().size(), t.data());
    out.emplace(e.name, std::move(t));
  }
  return out;
}

namespace {

template <class IoError>
void read_exact(std::ifstream& in, void* dst, std::uint64_t n, const IoError& io_error) {
  if (n == 0) return;
  in.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
  if (!in || static_cast<std::uint64_t>(in.gcount()) != n)
    throw io_error("unexpected end of file or read error (was it modified while reading?)");
}

/// An open file whose header has been read and validated, positioned at the data section.
struct OpenedFile {
  std::ifstream in;
  Layout layout;
};

/// Opens `path` and reads and validates its header; errors name `who` and the path. read_exact
/// reads exactly n bytes or throws Error(io).
OpenedFile open_safetensors(const std::string& path, const char* who) {
  const auto io_error = [&](const std::string& why) -> Error {
    return Error(ErrorCode::io, std::string(who) + ": cannot read '" + path + "': " + why);
  };
  std::error_code ec;
  const std::uintmax_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw io_error(ec.message());
  OpenedFile f{std::ifstream(path, std::ios::binary), {}};
  if (!f.in) throw io_error(std::strerror(errno));
  const Reporter report(std::string(who) + ": '" + path + "'");
  unsigned char prefix[kLengthPrefixBytes] = {};
  if (file_size >= kLengthPrefixBytes) read_exact(f.in, prefix, kLengthPrefixBytes, io_error);
  const std::uint64_t header_size = check_header_length(prefix, file_size, report);
  std::vector<unsigned char> header(static_cast<std::size_t>(header_size));
  read_exact(f.in, header.data(), header_size, io_error);
  f.layout = parse_layout(header.data(), header_size, file_size, report);
  return f;
}

}  // namespace

DType safetensors_storage(const std::string& path) {
  const Layout layout = open_safetensors(path, "safetensors_storage").layout;
  bool all_f16 = !layout.entries.empty(), all_bf16 = all_f16;
  for (const Entry& e : layout.entries) {
    all_f16 = all_f16 && e.dtype == FileDType::f16;
    all_bf16 = all_bf16 && e.dtype == FileDType::bf16;
  }
  return all_f16 ? DType::f16 : (all_bf16 ? DType::bf16 : DType::f32);
}

TensorMap load_safetensors(const std::string& path) {
  const auto io_error = [&](const std::string& why) -> Error {
    return Error(ErrorCode::io, "load_safetensors: cannot read '" + path + "': " + why);
  };
  // Only the header is validated from a buffer; tensor data streams straight into the tensors,
  // so the peak memory is the result rather than the result plus a copy of the file.
  OpenedFile f = open_safetensors(path, "load_safetensors");
  TensorMap out;
  std::vector<unsigned char> staging;
  // Entries are sorted by offset and tile the data section, so reading them in order is one
  // sequential pass over the file.
  for (const Entry& e : f.layout.entries) {
    Tensor t = Tensor(e.shape);
    const std::uint64_t nbytes = e.end - e.begin;
    if (e.dtype == FileDType::f32) {
      read_exact(f.in, t.data(), nbytes, io_error);
    } else {
      staging.resize(static_cast<std::size_t>(nbytes));
      read_exact(f.in, staging.data(), nbytes, io_error);
      convert_to_f32(e.dtype, staging.data(), t.values().size(), t.data());
    }
    out.emplace(e.name, std::move(t));
  }
  return out;
}

void save_safetensors(const std::string& path, const TensorMap& tensors) {
  // Validate and build the header before touching the file system.
  json header = json::object();
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__")
      detail::fail_arg("save_safetensors: '__metadata__' is reserved and cannot name a tensor");
    try {
      (void)json(name).dump();
    } catch (const json::exception&) {
      detail::fail_arg("save_safetensors: tensor name '", name, "' is not valid UTF-8");
    }
    const std::int64_t numel = checked_numel(t.shape(), "save_safetensors");
    if (static_cast<std::uint64_t>(numel) != t.values().size())
      detail::fail_arg("save_safetensors: tensor '", name, "' has shape ",
                       shape_to_string(t.shape()), " (", numel, " elements) but holds ",
                       t.values().size(), " values");
    const std::uint64_t nbytes = static_cast<std::uint64_t>(numel) * sizeof(float);
    header[name] = {{"dtype", "F32"}, {"shape", t.shape()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  // Hugging Face loaders look for format "pt"; it costs nothing and makes our files load there.
  header["__metadata__"] = {{"format", "pt"}};
  std::string text = header.dump();
  // Pad with spaces (valid JSON whitespace) so the data section starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');
  const std::uint64_t header_len = text.size();

  const auto io_error = [&](const std::string& why) {
    return Error(ErrorCode::io, "save_safetensors: cannot write '" + path + "': " + why);
  };

  // The temporary file lives beside the target so that the rename stays on one file system
  // (and is therefore atomic). "x" makes fopen fail rather than reuse an existing file.
  std::random_device rd;
  std::string tmp;
  std::FILE* f = nullptr;
  for (int attempt = 0; attempt < 16 && f == nullptr; ++attempt) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, ".tmp-%08x", static_cast<unsigned>(rd()));
    tmp = path + suffix;
    f = std::fopen(tmp.c_str(), "wbx");
    if (f == nullptr && errno != EEXIST) break;
  }
  if (f == nullptr) throw io_error(std::string("cannot create a temporary file: ") + std::strerror(errno));

  int err = 0;  // errno of the first failure
  const auto check = [&](bool ok) {
    if (!ok && err == 0) err = errno != 0 ? errno : EIO;
  };
  errno = 0;
  check(std::fwrite(&header_len, sizeof header_len, 1, f) == 1);
  check(std::fwrite(text.data(), 1, text.size(), f) == text.size());
  for (auto it = tensors.begin(); err == 0 && it != tensors.end(); ++it) {
    const auto& values = it->second.values();
    if (!values.empty())
      check(std::fwrite(values.data(), sizeof(float), values.size(), f) == values.size());
  }
  check(std::fflush(f) == 0);
  check(std::fclose(f) == 0);
  if (err != 0) {
    std::remove(tmp.c_str());
    throw io_error(std::strerror(err));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw io_error(ec.message());
  }
}

}  // namespace simdattn
