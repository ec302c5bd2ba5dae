// safetensors files: what we write is what any reader expects, byte for byte, and every
// damaged or malformed file is an mb::Error that names the file and says what to do.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/hash.hpp"
#include "model/safetensors.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using mb::model::SafetensorsFile;
using mb::model::TensorRef;
using mb::test::TempDir;

namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string le64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const fs::path& p) {
  auto v = mb::read_whole_file(p);
  return std::string(v.begin(), v.end());
}

// A file made by hand: the length, the header text as given, then `data`.
fs::path raw_file(const fs::path& p, const std::string& header, const std::string& data) {
  write_bytes(p, le64(header.size()) + header + data);
  return p;
}

std::string float_bytes(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

// Opening `p` throws an mb::Error whose where starts with the file, whose message contains
// `part`, and which has a hint.
void check_open_error(const fs::path& p, const std::string& part) {
  try {
    (void)SafetensorsFile::open(p);
    FAIL("no error; expected one containing '" << part << "'");
  } catch (const mb::Error& e) {
    INFO(std::string(e.what()));
    CHECK(e.where().rfind(p.string(), 0) == 0);
    CHECK(contains(e.message(), part));
    CHECK_FALSE(e.hint().empty());
  }
}

// A valid one-tensor file ("w": F32 [2]) with the header given by `entries` (JSON text of
// the header object's members).
fs::path one_tensor(const fs::path& p, const std::string& entries, const std::string& data) {
  return raw_file(p, "{" + entries + "}", data);
}

const std::string kW = R"("w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})";

}  // namespace

TEST_CASE("safetensors: round trip of several tensors, a scalar and a zero-size tensor") {
  TempDir tmp("st-roundtrip");
  const fs::path file = tmp.path / "model.safetensors";
  std::vector<float> a(2 * 3), b(5), scalar{3.5f};
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = 0.25f * static_cast<float>(i) - 1.0f;
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = 100.0f + static_cast<float>(i);
  // Names deliberately unsorted: the file keeps the order given.
  std::vector<TensorRef> tensors = {
      {"z.weight", {2, 3}, a.data()},
      {"scalar", {}, scalar.data()},
      {"empty", {0, 4}, nullptr},
      {"a.bias", {5}, b.data()},
  };
  mb::model::write_safetensors(file, tensors, {});

  const SafetensorsFile f = SafetensorsFile::open(file);
  REQUIRE(f.tensors().size() == 4);
  const char* order[] = {"z.weight", "scalar", "empty", "a.bias"};
  for (std::size_t i = 0; i < 4; ++i) CHECK(f.tensors()[i].name == order[i]);
  CHECK(f.has("scalar"));
  CHECK_FALSE(f.has("missing"));
  REQUIRE(f.find("empty") != nullptr);
  CHECK(f.find("empty")->shape == std::vector<std::int64_t>{0, 4});
  CHECK(f.find("empty")->begin == f.find("empty")->end);
  CHECK(f.find("scalar")->shape.empty());
  CHECK(f.find("z.weight")->dtype == "F32");

  std::vector<float> a2(6, 0.0f), b2(5, 0.0f);
  float s2 = 0.0f;
  const std::int64_t sa[] = {2, 3}, sb[] = {5}, se[] = {0, 4};
  f.read_f32("z.weight", sa, a2.data());
  f.read_f32("a.bias", sb, b2.data());
  f.read_f32("scalar", {}, &s2);
  f.read_f32("empty", se, nullptr);
  CHECK(a2 == a);
  CHECK(b2 == b);
  CHECK(s2 == 3.5f);
}

TEST_CASE("safetensors: metadata round trip, with the data checksum added") {
  TempDir tmp("st-meta");
  const fs::path file = tmp.path / "m.safetensors";
  const std::map<std::string, std::string> meta = {
      {"megabyte.config", "model:\n  kind: megabyte\n  context: 2048  # \"quoted\"\n"},
      {"unicode", "bits per byte \xce\xbb \xe2\x86\x92 0"},
      {"empty", ""},
      {mb::model::kDataChecksumKey, "not what the writer computes"},  // replaced by the writer
  };
  const float x[3] = {1, 2, 3};
  mb::model::write_safetensors(file, {{"x", {3}, x}}, meta);

  const SafetensorsFile f = SafetensorsFile::open(file);
  for (const auto& [k, v] : meta)
    if (k != mb::model::kDataChecksumKey) CHECK(f.metadata().at(k) == v);
  CHECK(f.metadata().size() == meta.size());
  // The checksum covers the data buffer: here the last 12 bytes of the file.
  const std::string bytes = read_bytes(file);
  const std::string data = bytes.substr(bytes.size() - 12);
  CHECK(f.metadata().at(mb::model::kDataChecksumKey) == mb::to_hex64(mb::xxh64(data)));
}

TEST_CASE("safetensors: the byte layout, checked independently of the reader") {
  TempDir tmp("st-layout");
  const fs::path file = tmp.path / "l.safetensors";
  const float w[4] = {1.0f, -2.0f, 0.5f, 1e-3f};
  const float b[2] = {7.0f, 8.0f};
  const float s = 42.0f;
  mb::model::write_safetensors(file, {{"w", {2, 2}, w}, {"s", {}, &s}, {"b", {2}, b}},
                               {{"k", "v"}});

  const std::string bytes = read_bytes(file);
  REQUIRE(bytes.size() >= 8);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  CHECK((8 + n) % 8 == 0);  // the data buffer is aligned for readers that map the file
  REQUIRE(8 + n <= bytes.size());
  const std::string header = bytes.substr(8, n);
  CHECK(header.front() == '{');
  // Padding is trailing spaces only.
  const std::size_t last = header.find_last_not_of(' ');
  CHECK(header[last] == '}');
  CHECK(n - (last + 1) < 8);

  const auto j = nlohmann::ordered_json::parse(header);
  REQUIRE(j.is_object());
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  CHECK(keys == std::vector<std::string>{"__metadata__", "w", "s", "b"});
  CHECK(j["__metadata__"]["k"] == "v");
  CHECK(j["__metadata__"]["megabyte.data_xxh64"].is_string());
  CHECK(j["w"]["dtype"] == "F32");
  CHECK(j["w"]["shape"] == nlohmann::ordered_json::array({2, 2}));
  CHECK(j["w"]["data_offsets"] == nlohmann::ordered_json::array({0, 16}));
  CHECK(j["s"]["shape"] == nlohmann::ordered_json::array());
  CHECK(j["s"]["data_offsets"] == nlohmann::ordered_json::array({16, 20}));
  CHECK(j["b"]["data_offsets"] == nlohmann::ordered_json::array({20, 28}));
  REQUIRE(bytes.size() == 8 + n + 28);
  const char* data = bytes.data() + 8 + n;
  float got[7];
  std::memcpy(got, data, sizeof got);
  const float want[7] = {1.0f, -2.0f, 0.5f, 1e-3f, 42.0f, 7.0f, 8.0f};
  for (int i = 0; i < 7; ++i) CHECK(got[i] == want[i]);
  // Little-endian on disk: 1.0f is 00 00 80 3f.
  CHECK(std::string(data, 4) == std::string("\x00\x00\x80\x3f", 4));
}

TEST_CASE(
    "safetensors: a file from another writer (no checksum, other dtypes, data order != header "
    "order)") {
  TempDir tmp("st-foreign");
  // Header lists b before a, but a comes first in the buffer; tensors() follows the buffer.
  const std::string header = R"({"b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},)"
                             R"( "a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}})";
  const fs::path p = raw_file(tmp.path / "f.safetensors", header + "   ",
                              std::string("\x00\x3c\x00\x40", 4) + float_bytes({9.0f}));
  const SafetensorsFile f = SafetensorsFile::open(p);
  REQUIRE(f.tensors().size() == 2);
  CHECK(f.tensors()[0].name == "a");
  CHECK(f.tensors()[0].dtype == "F16");
  CHECK(f.tensors()[1].name == "b");
  CHECK(f.metadata().empty());
  float v = 0;
  const std::int64_t shape[] = {1};
  f.read_f32("b", shape, &v);
  CHECK(v == 9.0f);

  // A file with no tensors at all is valid too.
  const SafetensorsFile e = SafetensorsFile::open(raw_file(tmp.path / "e.safetensors", "{}", ""));
  CHECK(e.tensors().empty());
}

TEST_CASE("safetensors: writing into an AtomicDirectory's staging directory") {
  TempDir tmp("st-atomicdir");
  const float x[2] = {1, 2};
  {
    mb::AtomicDirectory dir(tmp.path / "ckpt");
    mb::model::write_safetensors(dir.staging() / "model.safetensors", {{"x", {2}, x}}, {});
    mb::model::write_safetensors(dir.staging() / "optimizer.safetensors", {{"m", {2}, x}}, {});
    CHECK_FALSE(fs::exists(tmp.path / "ckpt"));
    dir.commit();
  }
  CHECK(SafetensorsFile::open(tmp.path / "ckpt" / "model.safetensors").has("x"));
  CHECK(SafetensorsFile::open(tmp.path / "ckpt" / "optimizer.safetensors").has("m"));
  // Only the two files: no temporaries left beside them.
  CHECK(std::distance(fs::directory_iterator(tmp.path / "ckpt"), fs::directory_iterator{}) == 2);
}

TEST_CASE("safetensors: a failed write leaves no file with the final name") {
  TempDir tmp("st-failwrite");
  const float x[2] = {1, 2};
  CHECK_THROWS_AS(
      mb::model::write_safetensors(tmp.path / "no-such-dir" / "m.safetensors", {{"x", {2}, x}}, {}),
      mb::Error);
  CHECK(fs::is_empty(tmp.path));

  // Bad input is refused before anything is created, and an existing file is untouched.
  const fs::path file = tmp.path / "m.safetensors";
  mb::model::write_safetensors(file, {{"x", {2}, x}}, {});
  const std::string before = read_bytes(file);
  CHECK_THROWS_AS(mb::model::write_safetensors(file, {{"x", {2}, x}, {"x", {2}, x}}, {}),
                  mb::Error);
  CHECK_THROWS_AS(mb::model::write_safetensors(file, {{"x", {-1}, x}}, {}), mb::Error);
  CHECK_THROWS_AS(mb::model::write_safetensors(file, {{"x", {2}, nullptr}}, {}), mb::Error);
  CHECK_THROWS_AS(mb::model::write_safetensors(file, {{"__metadata__", {2}, x}}, {}), mb::Error);
  CHECK_THROWS_AS(mb::model::write_safetensors(file, {{"", {2}, x}}, {}), mb::Error);
  CHECK_THROWS_AS(mb::model::write_safetensors(file, {{"x", {1ll << 40, 1ll << 40}, x}}, {}),
                  mb::Error);
  CHECK_THROWS_AS(mb::model::write_safetensors(file, {{"x", {2}, x}}, {{"bad", "\xff\xfe"}}),
                  mb::Error);
  CHECK(read_bytes(file) == before);
  CHECK(std::distance(fs::directory_iterator(tmp.path), fs::directory_iterator{}) == 1);
}

TEST_CASE("safetensors: truncated files") {
  TempDir tmp("st-truncated");
  const fs::path p = tmp.path / "t.safetensors";
  SUBCASE("shorter than 8 bytes") {
    write_bytes(p, "abc");
    check_open_error(p, "too short");
  }
  SUBCASE("header length larger than the file") {
    write_bytes(p, le64(1000) + "{}");
    check_open_error(p, "runs past the end of the file");
  }
  SUBCASE("header length near 2^64 does not overflow the check") {
    write_bytes(p, le64(~std::uint64_t{0} - 4) + "{}");
    check_open_error(p, "runs past the end of the file");
  }
  SUBCASE("header length over the limit") {
    write_bytes(p, le64(150'000'000));
    fs::resize_file(p, 150'000'100);  // sparse: no disk space used
    check_open_error(p, "over the limit");
  }
  SUBCASE("data shorter than the header says") {
    one_tensor(p, kW, float_bytes({1.0f}));
    check_open_error(p, "truncated");
  }
  SUBCASE("a written file cut short") {
    const float x[4] = {1, 2, 3, 4};
    mb::model::write_safetensors(p, {{"x", {4}, x}}, {});
    fs::resize_file(p, fs::file_size(p) - 1);
    check_open_error(p, "truncated");
  }
}

TEST_CASE("safetensors: bad headers") {
  TempDir tmp("st-badheader");
  const fs::path p = tmp.path / "h.safetensors";
  SUBCASE("empty header") {
    raw_file(p, "", "");
    check_open_error(p, "header is empty");
  }
  SUBCASE("not valid JSON") {
    raw_file(p, R"({"w": {"dtype": )", "");
    check_open_error(p, "not valid JSON");
  }
  SUBCASE("not UTF-8") {
    raw_file(p, "{\"w\xff\": 1}", "");
    check_open_error(p, "not valid JSON");
  }
  SUBCASE("not an object") {
    raw_file(p, "[1, 2]", "");
    check_open_error(p, "not a JSON object");
  }
  SUBCASE("not starting with {") {
    raw_file(p, " {}", "");
    check_open_error(p, "not a JSON object");
  }
  SUBCASE("duplicate tensor names") {
    one_tensor(p, kW + ", " + R"("w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]})",
               float_bytes({1, 2, 3, 4}));
    check_open_error(p, "two header entries are named 'w'");
  }
  SUBCASE("duplicate key inside an entry") {
    one_tensor(p, R"("w": {"dtype": "F32", "dtype": "F16", "shape": [2], "data_offsets": [0, 8]})",
               float_bytes({1, 2}));
    check_open_error(p, "duplicate key 'dtype'");
  }
  SUBCASE("metadata value not a string") {
    one_tensor(p, R"("__metadata__": {"step": 10}, )" + kW, float_bytes({1, 2}));
    check_open_error(p, "is not a string");
  }
  SUBCASE("metadata not an object") {
    one_tensor(p, R"("__metadata__": ["a"], )" + kW, float_bytes({1, 2}));
    check_open_error(p, "__metadata__ is not a JSON object");
  }
}

TEST_CASE("safetensors: bad header entries") {
  TempDir tmp("st-badentry");
  const fs::path p = tmp.path / "e.safetensors";
  const std::string data = float_bytes({1, 2});
  struct Case {
    const char* entry;
    const char* error;
  };
  const Case cases[] = {
      {R"("w": 3)", "not a JSON object"},
      {R"("w": {"shape": [2], "data_offsets": [0, 8]})", "no dtype"},
      {R"("w": {"dtype": "F32", "data_offsets": [0, 8]})", "no shape"},
      {R"("w": {"dtype": "F32", "shape": [2]})", "no data_offsets"},
      {R"("w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "offsets": [0, 8]})",
       "unknown key 'offsets'"},
      {R"("w": {"dtype": "F33", "shape": [2], "data_offsets": [0, 8]})", "unknown dtype 'F33'"},
      {R"("w": {"dtype": 4, "shape": [2], "data_offsets": [0, 8]})", "dtype is not a string"},
      {R"("w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]})", "negative dimension"},
      {R"("w": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]})", "not a whole number"},
      {R"("w": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]})", "shape is not a JSON array"},
      {R"("w": {"dtype": "F32", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 8]})",
       "too large"},
      {R"("w": {"dtype": "F32", "shape": [18446744073709551615], "data_offsets": [0, 8]})",
       "too large"},
      {R"("w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]})", "needs 8"},
      {R"("w": {"dtype": "F64", "shape": [2], "data_offsets": [0, 8]})", "needs 16"},
      {R"("w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]})", "end before they begin"},
      {R"("w": {"dtype": "F32", "shape": [2], "data_offsets": [0]})", "not [begin, end]"},
      {R"("w": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]})", "not [begin, end]"},
  };
  for (const Case& c : cases) {
    INFO(c.entry);
    one_tensor(p, c.entry, data);
    check_open_error(p, c.error);
  }
}

TEST_CASE("safetensors: offsets that overlap, leave gaps or do not cover the buffer") {
  TempDir tmp("st-offsets");
  const fs::path p = tmp.path / "o.safetensors";
  SUBCASE("overlap") {
    one_tensor(p, kW + R"(, "v": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]})",
               float_bytes({1, 2, 3}));
    check_open_error(p, "overlaps tensor 'w'");
  }
  SUBCASE("a zero-size tensor inside another") {
    one_tensor(p, kW + R"(, "v": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]})",
               float_bytes({1, 2}));
    check_open_error(p, "overlaps");
  }
  SUBCASE("gap between tensors") {
    one_tensor(p, kW + R"(, "v": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]})",
               float_bytes({1, 2, 3, 4, 5}));
    check_open_error(p, "before tensor 'v' belong to no tensor");
  }
  SUBCASE("gap at the start") {
    one_tensor(p, R"("w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]})",
               float_bytes({1, 2}));
    check_open_error(p, "belong to no tensor");
  }
  SUBCASE("bytes after the last tensor") {
    one_tensor(p, kW, float_bytes({1, 2, 3}));
    check_open_error(p, "after the last tensor");
  }
  SUBCASE("offsets past the end of a huge range") {
    one_tensor(
        p,
        R"("w": {"dtype": "U8", "shape": [9223372036854775807], "data_offsets": [0, 9223372036854775807]})",
        float_bytes({1, 2}));
    check_open_error(p, "truncated");
  }
}

TEST_CASE("safetensors: corrupt data fails the checksum") {
  TempDir tmp("st-checksum");
  const fs::path p = tmp.path / "c.safetensors";
  std::vector<float> x(1000);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  mb::model::write_safetensors(p, {{"x", {1000}, x.data()}}, {});
  SUBCASE("a flipped byte in the data") {
    std::string bytes = read_bytes(p);
    bytes[bytes.size() - 1000] ^= 0x01;
    write_bytes(p, bytes);
    check_open_error(p, "checksum mismatch");
    // Skipping verification opens it (for a quick description of the file).
    CHECK(SafetensorsFile::open(p, SafetensorsFile::Checksum::skip).has("x"));
  }
  SUBCASE("a checksum that is not hex") {
    const std::string header =
        R"({"__metadata__": {"megabyte.data_xxh64": "xyz"}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
    raw_file(p, header, float_bytes({1, 2}));
    check_open_error(p, "hex");
  }
}

TEST_CASE("safetensors: reading a missing tensor, the wrong shape or the wrong dtype") {
  TempDir tmp("st-read");
  const fs::path p = tmp.path / "r.safetensors";
  const float x[6] = {1, 2, 3, 4, 5, 6};
  mb::model::write_safetensors(p, {{"x", {2, 3}, x}}, {});
  const SafetensorsFile f = SafetensorsFile::open(p);
  float out[6];
  auto error_of = [&](const std::string& name, std::vector<std::int64_t> shape) -> mb::Error {
    try {
      f.read_f32(name, shape, out);
    } catch (const mb::Error& e) {
      return e;
    }
    FAIL("no error");
    return mb::Error("", "");
  };
  mb::Error missing = error_of("y", {2, 3});
  CHECK(missing.where() == p.string());
  CHECK(contains(missing.message(), "no tensor named 'y'"));
  CHECK_FALSE(missing.hint().empty());
  mb::Error shape = error_of("x", {3, 2});
  CHECK(contains(shape.where(), p.string()));
  CHECK(contains(shape.message(), "has shape [2, 3], expected [3, 2]"));
  CHECK_FALSE(shape.hint().empty());
  CHECK(contains(error_of("x", {6}).message(), "expected [6]"));
  CHECK(contains(error_of("x", {2, 3, 1}).message(), "expected [2, 3, 1]"));

  const fs::path q = one_tensor(tmp.path / "i.safetensors",
                                R"("n": {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]})",
                                float_bytes({1, 2}));
  const SafetensorsFile g = SafetensorsFile::open(q);
  const std::int64_t two[] = {2};
  try {
    g.read_f32("n", two, out);
    FAIL("no error");
  } catch (const mb::Error& e) {
    CHECK(contains(e.message(), "is I32, expected F32"));
  }
}
