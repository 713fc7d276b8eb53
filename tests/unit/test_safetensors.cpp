// tests/unit/test_safetensors.cpp — the safetensors reader and writer: round trips, F16/BF16
// conversion from hand-written bit patterns, the writer's file layout and atomicity, and the
// malformed-file corpus under tests/data/malformed (each file must fail with Error(format) and the
// message listed for it in expected_errors.tsv, through both load_safetensors and
// parse_safetensors).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "simdattn/error.hpp"
#include "simdattn/safetensors.hpp"
#include "support/compare.hpp"

namespace simdattn {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;

const fs::path kDataDir = SIMDATTN_TEST_DATA_DIR;

Bytes read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// A file: 8-byte little-endian header length, the header text as given, then `data`.
Bytes safetensors_bytes(const std::string& header, const Bytes& data = {}) {
  Bytes out;
  out.reserve(8 + header.size() + data.size());
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<unsigned char>(n >> (8 * i)));
  for (char c : header) out.push_back(static_cast<unsigned char>(c));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Bytes u16_le(const std::vector<std::uint16_t>& values) {
  Bytes out;
  for (std::uint16_t v : values) {
    out.push_back(static_cast<unsigned char>(v & 0xff));
    out.push_back(static_cast<unsigned char>(v >> 8));
  }
  return out;
}

std::uint32_t bits_of(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

/// Runs `f`, which must throw Error(code) with `substring` in its message.
::testing::AssertionResult throws_error(const std::function<void()>& f, ErrorCode code,
                                        const std::string& substring) {
  try {
    f();
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (e.code() != code)
      return ::testing::AssertionFailure() << "wrong ErrorCode " << static_cast<int>(e.code())
                                           << " (expected " << static_cast<int>(code)
                                           << "): " << msg;
    if (msg.find(substring) == std::string::npos)
      return ::testing::AssertionFailure() << "message \"" << msg << "\" lacks \"" << substring
                                           << "\"";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-simdattn exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw (expected \"" << substring << "\")";
}

/// A fresh directory for one test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("simdattn_st_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  fs::path path_;
};

::testing::AssertionResult same_tensors(const TensorMap& expected, const TensorMap& actual) {
  if (expected.size() != actual.size())
    return ::testing::AssertionFailure() << actual.size() << " tensors, expected "
                                         << expected.size();
  for (const auto& [name, t] : expected) {
    const auto it = actual.find(name);
    if (it == actual.end()) return ::testing::AssertionFailure() << "missing tensor " << name;
    if (it->second.shape() != t.shape())
      return ::testing::AssertionFailure() << name << ": shape " << shape_to_string(it->second.shape())
                                           << ", expected " << shape_to_string(t.shape());
    auto r = test::bitwise_equal(t.values(), it->second.values(), name);
    if (!r) return r;
  }
  return ::testing::AssertionSuccess();
}

TensorMap sample_tensors() {
  TensorMap m;
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  const auto random_tensor = [&](std::vector<std::int64_t> shape) {
    Tensor t(std::move(shape));
    for (float& v : t.values()) v = u(rng);
    return t;
  };
  m["weight"] = random_tensor({3, 5});
  m["bias"] = random_tensor({5});
  m["cube.4d"] = random_tensor({2, 1, 3, 2});
  m["scalar"] = Tensor({}, {7.5f});
  m["zero_rows"] = Tensor({0, 3});
  m["zero_middle"] = Tensor({3, 0, 2});
  m["specials"] = Tensor({6}, {std::numeric_limits<float>::quiet_NaN(),
                               std::numeric_limits<float>::infinity(),
                               -std::numeric_limits<float>::infinity(), -0.0f,
                               std::numeric_limits<float>::denorm_min(),
                               std::numeric_limits<float>::max()});
  m["unicode \xc3\xa9\xe2\x82\xac"] = Tensor({1}, {1.0f});
  return m;
}

// ---------------------------------------------------------------------------------------------
// Round trips and the writer's layout.

TEST(Safetensors, RoundTripKeepsShapesAndBits) {
  TempDir dir;
  const auto path = (dir.path() / "m.safetensors").string();
  const TensorMap m = sample_tensors();
  save_safetensors(path, m);
  EXPECT_TRUE(same_tensors(m, load_safetensors(path)));
  const Bytes bytes = read_file(path);
  EXPECT_TRUE(same_tensors(m, parse_safetensors(bytes.data(), bytes.size())));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"m.safetensors"}) << "temporary file left";
}

TEST(Safetensors, RoundTripEmptyMap) {
  TempDir dir;
  const auto path = (dir.path() / "empty.safetensors").string();
  save_safetensors(path, {});
  EXPECT_TRUE(load_safetensors(path).empty());
}

TEST(Safetensors, WriterPadsHeaderAndStoresTensorsContiguouslyInNameOrder) {
  TempDir dir;
  const auto path = (dir.path() / "m.safetensors").string();
  const TensorMap m = sample_tensors();
  save_safetensors(path, m);
  const Bytes bytes = read_file(path);
  ASSERT_GE(bytes.size(), 8u);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  ASSERT_LE(8 + n, bytes.size());
  EXPECT_EQ(n % 8, 0u) << "header must be padded to a multiple of 8 bytes";
  const std::string header(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  EXPECT_EQ(header.front(), '{');
  EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}')) << "padding must be spaces";
  EXPECT_NE(header.find("\"dtype\":\"F32\""), std::string::npos);
  EXPECT_NE(header.find("\"format\":\"pt\""), std::string::npos);

  // The data section is exactly the tensors' values, concatenated in name order.
  Bytes expected;
  for (const auto& [name, t] : m) {
    const auto* p = reinterpret_cast<const unsigned char*>(t.data());
    expected.insert(expected.end(), p, p + t.values().size() * sizeof(float));
  }
  EXPECT_EQ(Bytes(bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n), bytes.end()), expected);

  // Saving is deterministic, and overwriting replaces the file.
  save_safetensors(path, m);
  EXPECT_EQ(read_file(path), bytes);
  save_safetensors(path, {{"x", Tensor({1}, {2.0f})}});
  EXPECT_EQ(load_safetensors(path).size(), 1u);
}

TEST(Safetensors, LoadAndParseAgreeOnTheValidCorpus) {
  std::size_t count = 0;
  for (const auto& e : fs::directory_iterator(kDataDir / "valid")) {
    if (e.path().extension() != ".safetensors") continue;
    SCOPED_TRACE(e.path().string());
    TensorMap loaded;
    ASSERT_NO_THROW(loaded = load_safetensors(e.path().string()));
    const Bytes bytes = read_file(e.path());
    EXPECT_TRUE(same_tensors(loaded, parse_safetensors(bytes.data(), bytes.size())));
    ++count;
  }
  EXPECT_GE(count, 4u);
}

TEST(Safetensors, ValidCorpusF32ShapesAndUnalignedData) {
  const TensorMap m = load_safetensors((kDataDir / "valid/f32_shapes_unaligned.safetensors").string());
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m.at("matrix").shape(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(m.at("matrix").values(), (std::vector<float>{0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 2.5f}));
  EXPECT_EQ(m.at("scalar").shape(), std::vector<std::int64_t>{});
  EXPECT_EQ(m.at("scalar").values(), std::vector<float>{3.25f});
  EXPECT_EQ(m.at("empty").shape(), (std::vector<std::int64_t>{0, 4}));
  EXPECT_TRUE(m.at("empty").empty());
  EXPECT_EQ(m.at("vector").values(),
            (std::vector<float>{-1.0f, 0.0f, std::numeric_limits<float>::infinity(),
                                std::numeric_limits<float>::denorm_min()}));
}

TEST(Safetensors, ValidCorpusZeroSizeTensors) {
  const TensorMap m = load_safetensors((kDataDir / "valid/zero_size_tensors.safetensors").string());
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m.at("b").values(), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_TRUE(m.at("a_zero").empty());
  EXPECT_EQ(m.at("c_zero_huge").shape(),
            (std::vector<std::int64_t>{0, std::int64_t{1} << 62, std::int64_t{1} << 62}));
  EXPECT_TRUE(load_safetensors((kDataDir / "valid/no_tensors.safetensors").string()).empty());
}

// ---------------------------------------------------------------------------------------------
// F16 and BF16.

// safetensors_storage: a file's own type when every tensor has it, else f32.
TEST(Safetensors, StorageIsTheFilesTypeWhenUniform) {
  TempDir dir;
  const auto write = [&](const std::string& name, const Bytes& bytes) {
    const auto path = (dir.path() / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return path;
  };
  const Bytes two = u16_le({0x3C00, 0x4000});
  Bytes four = two;
  four.insert(four.end(), two.begin(), two.end());
  EXPECT_EQ(safetensors_storage(write("h.safetensors", safetensors_bytes(
                R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", two))),
            DType::f16);
  EXPECT_EQ(safetensors_storage(write("b.safetensors", safetensors_bytes(
                R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", two))),
            DType::bf16);
  EXPECT_EQ(safetensors_storage(write("m.safetensors", safetensors_bytes(
                R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},)"
                R"("b":{"dtype":"F16","shape":[2],"data_offsets":[4,8]}})", four))),
            DType::f32);
  EXPECT_EQ(safetensors_storage((kDataDir / "valid/f32_shapes_unaligned.safetensors").string()),
            DType::f32);
  EXPECT_EQ(safetensors_storage((kDataDir / "valid/no_tensors.safetensors").string()), DType::f32);
  EXPECT_THROW(safetensors_storage((dir.path() / "missing.safetensors").string()), Error);
}

TEST(Safetensors, F16KnownBitPatterns) {
  const std::vector<std::uint16_t> bits = {0x0000, 0x8000, 0x3C00, 0xC000, 0x7BFF, 0x0001,
                                           0x03FF, 0x0400, 0x7C00, 0xFC00, 0x3555, 0x8001};
  const std::vector<float> expected = {0.0f, -0.0f, 1.0f, -2.0f, 65504.0f,
                                       std::ldexp(1.0f, -24),         // smallest subnormal
                                       std::ldexp(1023.0f, -24),      // largest subnormal
                                       std::ldexp(1.0f, -14),         // smallest normal
                                       std::numeric_limits<float>::infinity(),
                                       -std::numeric_limits<float>::infinity(),
                                       0.333251953125f, -std::ldexp(1.0f, -24)};
  const Bytes file = safetensors_bytes(
      R"({"h":{"dtype":"F16","shape":[3,4],"data_offsets":[0,24]}})", u16_le(bits));
  const TensorMap m = parse_safetensors(file.data(), file.size());
  EXPECT_EQ(m.at("h").shape(), (std::vector<std::int64_t>{3, 4}));
  EXPECT_TRUE(test::bitwise_equal(expected, m.at("h").values(), "F16"));
}

TEST(Safetensors, F16NaNsStayNaNWithTheirPayload) {
  // Quiet NaN, signalling NaN (payload 1), negative quiet NaN with payload.
  const Bytes file = safetensors_bytes(
      R"({"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]}})", u16_le({0x7E00, 0x7C01, 0xFE01}));
  const TensorMap m = parse_safetensors(file.data(), file.size());
  EXPECT_EQ(bits_of(m.at("h")[0]), 0x7FC00000u);
  EXPECT_EQ(bits_of(m.at("h")[1]), 0x7F802000u);
  EXPECT_EQ(bits_of(m.at("h")[2]), 0xFFC02000u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(std::isnan(m.at("h")[i]));
}

TEST(Safetensors, F16EveryBitPatternMatchesTheDefinition) {
  // All 65536 halves against the textbook value (-1)^s * 2^(e-15) * (1 + m/1024), computed in
  // double: catches any exponent-rebias or subnormal slip the hand-picked values miss.
  std::vector<std::uint16_t> bits(65536);
  for (std::uint32_t i = 0; i < 65536; ++i) bits[i] = static_cast<std::uint16_t>(i);
  const Bytes file = safetensors_bytes(
      R"({"h":{"dtype":"F16","shape":[65536],"data_offsets":[0,131072]}})", u16_le(bits));
  const TensorMap m = parse_safetensors(file.data(), file.size());
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const int s = (i >> 15) & 1, e = (i >> 10) & 0x1f, mant = i & 0x3ff;
    const float got = m.at("h")[i];
    if (e == 0x1f) {
      if (mant == 0) {
        ASSERT_TRUE(std::isinf(got) && std::signbit(got) == (s == 1)) << std::hex << i;
      } else {
        ASSERT_TRUE(std::isnan(got)) << std::hex << i;
        ASSERT_EQ(bits_of(got), ((i & 0x8000u) << 16) | 0x7F800000u | (mant << 13)) << std::hex << i;
      }
      continue;
    }
    const double mag = e == 0 ? std::ldexp(static_cast<double>(mant), -24)
                              : std::ldexp(1.0 + mant / 1024.0, e - 15);
    const double want = s ? -mag : mag;
    ASSERT_EQ(static_cast<double>(got), want) << std::hex << i;
    ASSERT_EQ(std::signbit(got), s == 1) << std::hex << i;
  }
}

TEST(Safetensors, BF16KnownBitPatterns) {
  const std::vector<std::uint16_t> bits = {0x0000, 0x8000, 0x3F80, 0xC049, 0x7F80,
                                           0xFF80, 0x7FC0, 0x0001, 0x7F7F};
  const Bytes file = safetensors_bytes(
      R"({"b":{"dtype":"BF16","shape":[9],"data_offsets":[0,18]}})", u16_le(bits));
  const TensorMap m = parse_safetensors(file.data(), file.size());
  const std::vector<float> expected = {0.0f, -0.0f, 1.0f, -3.140625f,
                                       std::numeric_limits<float>::infinity(),
                                       -std::numeric_limits<float>::infinity(),
                                       std::numeric_limits<float>::quiet_NaN(),
                                       std::ldexp(1.0f, -133),  // bf16's smallest subnormal
                                       3.3895313892515355e38f};  // bf16's largest finite
  EXPECT_TRUE(test::bitwise_equal(expected, m.at("b").values(), "BF16"));
}

TEST(Safetensors, MixedDtypesAtUnalignedOffsets) {
  // An F16 tensor of 3 elements (6 bytes) pushes the F32 tensor after it to an odd alignment;
  // a 1-byte-longer header misaligns everything once more.
  Bytes data = u16_le({0x3C00, 0x4000, 0x4200});
  const float f[2] = {-1.5f, 8.0f};
  const auto* p = reinterpret_cast<const unsigned char*>(f);
  data.insert(data.end(), p, p + 8);
  const Bytes file = safetensors_bytes(
      R"({"a":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"F32","shape":[2],"data_offsets":[6,14]}} )",
      data);
  const TensorMap m = parse_safetensors(file.data(), file.size());
  EXPECT_EQ(m.at("a").values(), (std::vector<float>{1.0f, 2.0f, 3.0f}));
  EXPECT_EQ(m.at("b").values(), (std::vector<float>{-1.5f, 8.0f}));
}

TEST(Safetensors, ValidCorpusF16AndBF16) {
  const TensorMap m = load_safetensors((kDataDir / "valid/f16_bf16_bit_patterns.safetensors").string());
  const auto& h = m.at("half").values();
  ASSERT_EQ(h.size(), 12u);
  EXPECT_EQ(h[2], 1.0f);
  EXPECT_EQ(h[4], 65504.0f);
  EXPECT_EQ(h[5], std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isnan(h[10]));
  const auto& b = m.at("brain").values();
  ASSERT_EQ(b.size(), 8u);
  EXPECT_EQ(b[3], -3.140625f);
  EXPECT_EQ(b[7], std::ldexp(1.0f, -133));
}

// ---------------------------------------------------------------------------------------------
// Errors that the file corpus cannot express.

TEST(Safetensors, HeaderCapIsCheckedBeforeTheFileSize) {
  Bytes file(16, 0);
  const std::uint64_t n = 100'000'001;
  std::memcpy(file.data(), &n, 8);
  EXPECT_TRUE(throws_error([&] { parse_safetensors(file.data(), file.size(), "big.bin"); },
                           ErrorCode::format,
                           "parse_safetensors: big.bin: header length (100000001 bytes) exceeds"));
}

TEST(Safetensors, NullBytesWithZeroSizeIsAFormatError) {
  EXPECT_TRUE(throws_error([] { parse_safetensors(nullptr, 0); }, ErrorCode::format,
                           "parse_safetensors: <memory>: file is 0 bytes"));
  EXPECT_TRUE(throws_error([] { parse_safetensors(nullptr, 8); }, ErrorCode::invalid_argument,
                           "bytes must not be null"));
}

TEST(Safetensors, ParseErrorsNameTheSourceAndTheTensor) {
  const Bytes file = safetensors_bytes(
      R"({"layer.0.weight":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", Bytes(8));
  EXPECT_TRUE(throws_error([&] { parse_safetensors(file.data(), file.size(), "ckpt"); },
                           ErrorCode::format,
                           "parse_safetensors: ckpt: tensor 'layer.0.weight': dtype 'F64' is not "
                           "supported (expected F32, F16 or BF16)"));
}

TEST(Safetensors, LoadMissingFileIsAnIoError) {
  TempDir dir;
  const auto path = (dir.path() / "nope.safetensors").string();
  EXPECT_TRUE(throws_error([&] { load_safetensors(path); }, ErrorCode::io,
                           "load_safetensors: cannot read '" + path + "'"));
  EXPECT_TRUE(throws_error([&] { load_safetensors(dir.path().string()); }, ErrorCode::io,
                           "load_safetensors: cannot read"));
}

TEST(Safetensors, SaveIntoMissingFolderIsAnIoErrorAndLeavesNothing) {
  TempDir dir;
  const auto path = (dir.path() / "no_such_dir" / "m.safetensors").string();
  EXPECT_TRUE(throws_error([&] { save_safetensors(path, sample_tensors()); }, ErrorCode::io,
                           "save_safetensors: cannot write '" + path + "'"));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Safetensors, FailedRenameRemovesTheTemporaryFile) {
  // The target is a non-empty directory, so the final rename fails after the data was written.
  TempDir dir;
  const auto target = dir.path() / "occupied";
  fs::create_directories(target / "child");
  EXPECT_TRUE(throws_error([&] { save_safetensors(target.string(), sample_tensors()); },
                           ErrorCode::io, "save_safetensors: cannot write"));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"occupied"});
}

TEST(Safetensors, FailedSaveKeepsTheOldFile) {
  TempDir dir;
  const auto path = (dir.path() / "m.safetensors").string();
  save_safetensors(path, {{"x", Tensor({1}, {2.0f})}});
  const Bytes before = read_file(path);
  TensorMap bad = {{"a", Tensor({2}, {1.0f, 2.0f})}};
  bad["a"].values().push_back(3.0f);  // values no longer match the shape
  EXPECT_TRUE(throws_error([&] { save_safetensors(path, bad); }, ErrorCode::invalid_argument,
                           "save_safetensors: tensor 'a' has shape [2] (2 elements) but holds 3"));
  EXPECT_EQ(read_file(path), before);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"m.safetensors"});
}

TEST(Safetensors, SaveRejectsNamesThatCannotBeWritten) {
  TempDir dir;
  const auto path = (dir.path() / "m.safetensors").string();
  EXPECT_TRUE(throws_error([&] { save_safetensors(path, {{"__metadata__", Tensor({1})}}); },
                           ErrorCode::invalid_argument, "'__metadata__' is reserved"));
  EXPECT_TRUE(throws_error([&] { save_safetensors(path, {{"bad\xff", Tensor({1})}}); },
                           ErrorCode::invalid_argument, "is not valid UTF-8"));
  // A default-constructed Tensor has rank 0 (one element) but no values.
  EXPECT_TRUE(throws_error([&] { save_safetensors(path, {{"t", Tensor()}}); },
                           ErrorCode::invalid_argument, "tensor 't' has shape [] (1 elements)"));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Safetensors, EveryTruncationOfAValidFileIsRejected) {
  // Cutting a file anywhere must give a format error, never a crash or a partial result.
  const Bytes full = read_file(kDataDir / "valid/f32_shapes_unaligned.safetensors");
  for (std::size_t n = 0; n < full.size(); ++n) {
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    ASSERT_TRUE(throws_error([&] { parse_safetensors(cut.data(), cut.size()); },
                             ErrorCode::format, "parse_safetensors: <memory>: "))
        << "truncated to " << n << " bytes";
  }
}

// ---------------------------------------------------------------------------------------------
// The malformed-file corpus (regenerate with tools/make_malformed_safetensors.py).

struct MalformedCase {
  std::string file;
  std::string message;
};
void PrintTo(const MalformedCase& c, std::ostream* os) { *os << c.file; }

std::map<std::string, std::string> expected_errors() {
  std::map<std::string, std::string> out;
  std::ifstream in(kDataDir / "malformed" / "expected_errors.tsv");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto tab = line.find('\t');
    if (tab != std::string::npos) out[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return out;
}

std::vector<MalformedCase> malformed_cases() {
  const auto expected = expected_errors();
  std::vector<MalformedCase> cases;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(kDataDir / "malformed", ec)) {
    if (e.path().extension() != ".safetensors") continue;
    const std::string file = e.path().filename().string();
    const auto it = expected.find(file);
    cases.push_back({file, it == expected.end() ? std::string() : it->second});
  }
  std::sort(cases.begin(), cases.end(),
            [](const MalformedCase& a, const MalformedCase& b) { return a.file < b.file; });
  return cases;
}

class MalformedCorpus : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(MalformedCorpus, LoadThrowsFormatErrorNamingFileAndProblem) {
  const MalformedCase& c = GetParam();
  ASSERT_FALSE(c.message.empty())
      << c.file << " has no line in tests/data/malformed/expected_errors.tsv";
  const std::string path = (kDataDir / "malformed" / c.file).string();
  EXPECT_TRUE(throws_error([&] { load_safetensors(path); }, ErrorCode::format, c.message));
  EXPECT_TRUE(throws_error([&] { load_safetensors(path); }, ErrorCode::format,
                           "load_safetensors: '" + path + "': "));
}

TEST_P(MalformedCorpus, ParseThrowsTheSameError) {
  const MalformedCase& c = GetParam();
  const Bytes bytes = read_file(kDataDir / "malformed" / c.file);
  const auto parse = [&] { parse_safetensors(bytes.data(), bytes.size(), c.file); };
  EXPECT_TRUE(throws_error(parse, ErrorCode::format, c.message));
  EXPECT_TRUE(throws_error(parse, ErrorCode::format, "parse_safetensors: " + c.file + ": "));
}

INSTANTIATE_TEST_SUITE_P(Files, MalformedCorpus, ::testing::ValuesIn(malformed_cases()),
                         [](const ::testing::TestParamInfo<MalformedCase>& info) {
                           std::string name = info.param.file.substr(0, info.param.file.find('.'));
                           for (char& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

TEST(Safetensors, MalformedCorpusIsPresentAndFullyListed) {
  const auto cases = malformed_cases();
  EXPECT_GE(cases.size(), 50u) << "run tools/make_malformed_safetensors.py";
  const auto expected = expected_errors();
  for (const auto& [file, message] : expected)
    EXPECT_TRUE(fs::exists(kDataDir / "malformed" / file)) << file << " is listed but missing";
}

}  // namespace
}  // namespace simdattn
