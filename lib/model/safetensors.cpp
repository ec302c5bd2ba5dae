#include "model/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <limits>
#include <numeric>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/hash.hpp"

namespace mb::model {

namespace fs = std::filesystem;
// ordered_json keeps keys in the order written and read, so the header lists the tensors
// in the caller's order and tensors() can break ties in header order.
using Json = nlohmann::ordered_json;

// Tensor bytes are copied between memory and the file as they are.
static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

const char* kCorrupt = "the checkpoint is truncated or corrupt; use an earlier checkpoint";
const char* kOtherModel =
    "the checkpoint was written for a different model or config; use it with the config it was "
    "trained with";

// The reference implementation refuses headers over 100 MB; so do we, so that a corrupt
// length cannot make us allocate gigabytes before finding out.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
// Checksum verification streams the data buffer in chunks of this size.
constexpr std::size_t kChecksumChunk = std::size_t{4} << 20;

struct Dtype {
  const char* name;
  std::uint64_t bytes;
};
// The byte-sized dtypes of the format. The sub-byte ones (F4, F6_*) are refused as unknown:
// their sizes are not a whole number of bytes per element.
constexpr Dtype kDtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
    {"F32", 4},  {"I64", 8}, {"U64", 8}, {"F64", 8},
};

std::uint64_t dtype_bytes(const std::string& dtype) {
  for (const Dtype& d : kDtypes)
    if (dtype == d.name) return d.bytes;
  return 0;
}

std::string known_dtypes() {
  std::string s;
  for (const Dtype& d : kDtypes) s.append(s.empty() ? "" : ", ").append(d.name);
  return s;
}

template <class Int>
std::string shape_text(std::span<const Int> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i)
    s.append(i ? ", " : "").append(std::to_string(shape[i]));
  return s + "]";
}
std::string shape_text(const std::vector<std::int64_t>& shape) {
  return shape_text(std::span<const std::int64_t>(shape));
}

std::string at_offset(const std::string& where, std::uint64_t offset) {
  return where + ": offset " + std::to_string(offset);
}

// Product of the dimensions, or false if it does not fit in 64 bits.
bool element_count(std::span<const std::int64_t> shape, std::uint64_t* out) {
  std::uint64_t n = 1;
  for (std::int64_t d : shape)
    if (__builtin_mul_overflow(n, static_cast<std::uint64_t>(d), &n)) return false;
  *out = n;
  return true;
}

std::uint64_t get_u64_le(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A non-negative JSON integer (nlohmann stores those as unsigned), or false.
bool as_u64(const Json& j, std::uint64_t* out) {
  if (!j.is_number_unsigned()) return false;
  *out = j.get<std::uint64_t>();
  return true;
}

// Parses the header text, refusing duplicate keys at any depth: nlohmann would silently
// keep the last one, and two tensors with one name mean the file is not what its writer
// meant.
Json parse_header(const std::string& text, const std::string& where) {
  std::vector<std::unordered_set<std::string>> open_objects;
  std::string duplicate;
  bool duplicate_is_tensor = false;
  Json::parser_callback_t callback = [&](int, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      open_objects.pop_back();
    } else if (event == Json::parse_event_t::key && duplicate.empty()) {
      if (!open_objects.back().insert(parsed.get<std::string>()).second) {
        duplicate = parsed.get<std::string>();
        duplicate_is_tensor = open_objects.size() == 1;
      }
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(text, callback);
  } catch (const Json::parse_error& e) {
    // e.what() starts with "[json.exception.parse_error.101] "; keep only the useful part.
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what.erase(0, p + 2);
    const std::uint64_t byte = e.byte > 0 ? e.byte - 1 : 0;
    throw Error(at_offset(where, 8 + std::min<std::uint64_t>(byte, text.size())),
                "header is not valid JSON: " + what, kCorrupt);
  }
  if (!duplicate.empty())
    throw Error(where,
                duplicate_is_tensor ? "two header entries are named '" + duplicate + "'"
                                    : "duplicate key '" + duplicate + "' in the header",
                kCorrupt);
  if (!header.is_object() || text.front() != '{')
    throw Error(at_offset(where, 8), "header is not a JSON object (it must start with '{')",
                kCorrupt);
  return header;
}

std::map<std::string, std::string> parse_metadata(const Json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where, "__metadata__ is not a JSON object", kCorrupt);
  std::map<std::string, std::string> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_string())
      throw Error(where,
                  "__metadata__ value for '" + it.key() + "' is not a string (it is " +
                      it.value().type_name() + ")",
                  kCorrupt);
    out.emplace(it.key(), it.value().get<std::string>());
  }
  return out;
}

SafetensorsFile::Entry parse_entry(const std::string& name, const Json& j,
                                   const std::string& file) {
  const std::string where = file + ": tensor '" + name + "'";
  if (!j.is_object()) throw Error(where, "header entry is not a JSON object", kCorrupt);
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets")
      throw Error(where,
                  "unknown key '" + it.key() +
                      "' in the header entry (expected dtype, shape, data_offsets)",
                  kCorrupt);
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!j.contains(key)) throw Error(where, std::string("header entry has no ") + key, kCorrupt);

  SafetensorsFile::Entry e;
  e.name = name;
  const Json& dtype = j["dtype"];
  if (!dtype.is_string()) throw Error(where, "dtype is not a string", kCorrupt);
  e.dtype = dtype.get<std::string>();
  const std::uint64_t item = dtype_bytes(e.dtype);
  if (item == 0)
    throw Error(where, "unknown dtype '" + e.dtype + "'",
                "this reader knows " + known_dtypes() + "; convert the tensor to one of them");

  const Json& shape = j["shape"];
  if (!shape.is_array()) throw Error(where, "shape is not a JSON array", kCorrupt);
  for (const Json& d : shape) {
    std::uint64_t v;
    if (d.is_number_integer() && !d.is_number_unsigned())
      throw Error(where, "shape has a negative dimension (" + d.dump() + ")", kCorrupt);
    if (!as_u64(d, &v))
      throw Error(where, "shape holds " + d.dump() + ", not a whole number", kCorrupt);
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      throw Error(where, "shape dimension " + std::to_string(v) + " is too large", kCorrupt);
    e.shape.push_back(static_cast<std::int64_t>(v));
  }

  const Json& offsets = j["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !as_u64(offsets[0], &e.begin) ||
      !as_u64(offsets[1], &e.end))
    throw Error(where,
                "data_offsets is " + offsets.dump() + ", not [begin, end] with whole numbers",
                kCorrupt);
  if (e.end < e.begin)
    throw Error(where, "data_offsets " + offsets.dump() + " end before they begin", kCorrupt);

  std::uint64_t elements = 0, bytes = 0;
  if (!element_count(e.shape, &elements) || __builtin_mul_overflow(elements, item, &bytes))
    throw Error(where, "shape " + shape_text(e.shape) + " of " + e.dtype + " is too large to exist",
                kCorrupt);
  if (e.end - e.begin != bytes)
    throw Error(where,
                "data_offsets " + offsets.dump() + " span " + std::to_string(e.end - e.begin) +
                    " bytes, but " + e.dtype + " " + shape_text(e.shape) + " needs " +
                    std::to_string(bytes),
                kCorrupt);
  return e;
}

}  // namespace

void write_safetensors(const fs::path& path, const std::vector<TensorRef>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string where = path.string();

  // Validate and hash everything first: the checksum goes into the header, which precedes
  // the data, and nothing should be created for a call that is going to fail.
  std::vector<std::uint64_t> sizes;
  sizes.reserve(tensors.size());
  std::unordered_set<std::string> names;
  std::uint64_t total = 0;
  Xxh64Stream hash;
  for (const TensorRef& t : tensors) {
    const std::string tw = where + ": tensor '" + t.name + "'";
    if (t.name.empty() || t.name == "__metadata__")
      throw Error(where, "cannot write a tensor named '" + t.name + "'",
                  "give every tensor a real name");
    if (!names.insert(t.name).second)
      throw Error(tw, "two tensors have this name", "give every tensor its own name");
    for (std::int64_t d : t.shape)
      if (d < 0) throw Error(tw, "shape " + shape_text(t.shape) + " has a negative dimension");
    std::uint64_t elements = 0, bytes = 0;
    if (!element_count(t.shape, &elements) ||
        __builtin_mul_overflow(elements, std::uint64_t{4}, &bytes) ||
        __builtin_add_overflow(total, bytes, &total))
      throw Error(tw, "shape " + shape_text(t.shape) + " is too large");
    if (bytes > 0 && t.data == nullptr)
      throw Error(tw, "has " + std::to_string(elements) + " elements but no data");
    if (bytes > 0)
      hash.update({reinterpret_cast<const std::uint8_t*>(t.data), static_cast<std::size_t>(bytes)});
    sizes.push_back(bytes);
  }

  std::map<std::string, std::string> meta = metadata;
  meta[kDataChecksumKey] = to_hex64(hash.digest());
  Json header = Json::object();
  header["__metadata__"] = Json::object();
  for (const auto& [k, v] : meta) header["__metadata__"][k] = v;
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    header[tensors[i].name] = {{"dtype", "F32"},
                               {"shape", tensors[i].shape},
                               {"data_offsets", {offset, offset + sizes[i]}}};
    offset += sizes[i];
  }
  std::string text;
  try {
    text = header.dump(-1, ' ', false, Json::error_handler_t::strict);
  } catch (const Json::exception& e) {
    // The only way dump() fails: a name or a metadata string that is not UTF-8.
    throw Error(where, std::string("cannot write the header: ") + e.what(),
                "tensor names and metadata must be valid UTF-8");
  }
  // Pad with spaces (the format allows trailing whitespace) so that the data buffer starts
  // at a multiple of 8 bytes and readers that map the file can use the tensors in place.
  text.append((8 - text.size() % 8) % 8, ' ');

  std::uint8_t len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(text.size()) >> (8 * i));
  AtomicFile out(path);
  out.write(std::span<const std::uint8_t>(len, 8));
  out.write(text);
  for (std::size_t i = 0; i < tensors.size(); ++i)
    if (sizes[i] > 0)
      out.write({reinterpret_cast<const std::uint8_t*>(tensors[i].data),
                 static_cast<std::size_t>(sizes[i])});
  out.commit();
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const fs::path& path, Checksum checksum) {
  SafetensorsFile f;
  f.path_ = path;
  f.file_ = std::make_unique<ReadOnlyFile>(path);
  const std::string where = path.string();
  const std::uint64_t size = f.file_->size();

  if (size < 8)
    throw Error(where, "too short to be a safetensors file (" + std::to_string(size) + " bytes)",
                kCorrupt);
  std::uint8_t len[8];
  f.file_->read_at(0, len);
  const std::uint64_t n = get_u64_le(len);
  // Compare against size - 8 rather than computing 8 + n, which a corrupt n could overflow.
  if (n > size - 8)
    throw Error(at_offset(where, 0),
                "header length " + std::to_string(n) + " runs past the end of the file (" +
                    std::to_string(size) + " bytes)",
                kCorrupt);
  if (n > kMaxHeaderBytes)
    throw Error(at_offset(where, 0),
                "header length " + std::to_string(n) + " is over the limit of " +
                    std::to_string(kMaxHeaderBytes) + " bytes",
                kCorrupt);
  if (n == 0)
    throw Error(at_offset(where, 8), "header is empty (it must be a JSON object)", kCorrupt);
  std::string text(static_cast<std::size_t>(n), '\0');
  f.file_->read_at(8, {reinterpret_cast<std::uint8_t*>(text.data()), text.size()});
  f.data_start_ = 8 + n;
  const std::uint64_t buffer_size = size - f.data_start_;

  const Json header = parse_header(text, where);
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__")
      f.metadata_ = parse_metadata(it.value(), where);
    else
      entries.push_back(parse_entry(it.key(), it.value(), where));
  }

  // The tensors must tile the data buffer: sorted by position, each starts where the
  // previous one ended and the last ends at the end of the file. A stable sort keeps header
  // order among zero-size tensors at one offset.
  std::vector<std::size_t> order(entries.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return entries[a].begin != entries[b].begin ? entries[a].begin < entries[b].begin
                                                : entries[a].end < entries[b].end;
  });
  std::uint64_t cursor = 0;
  const Entry* previous = nullptr;
  for (std::size_t i : order) {
    const Entry& e = entries[i];
    if (e.begin < cursor)
      throw Error(
          at_offset(where, f.data_start_ + e.begin),
          "tensor '" + e.name + "' overlaps tensor '" + previous->name + "' in the data buffer",
          kCorrupt);
    if (e.begin > cursor)
      throw Error(at_offset(where, f.data_start_ + cursor),
                  std::to_string(e.begin - cursor) + " bytes before tensor '" + e.name +
                      "' belong to no tensor",
                  kCorrupt);
    cursor = e.end;
    previous = &e;
  }
  if (cursor > buffer_size)
    throw Error(where,
                "truncated: the header describes " + std::to_string(cursor) +
                    " bytes of tensor data, but only " + std::to_string(buffer_size) + " follow it",
                kCorrupt);
  if (cursor < buffer_size)
    throw Error(
        at_offset(where, f.data_start_ + cursor),
        std::to_string(buffer_size - cursor) + " bytes after the last tensor belong to no tensor",
        kCorrupt);

  f.entries_.reserve(entries.size());
  for (std::size_t i : order) {
    f.index_.emplace(entries[i].name, f.entries_.size());
    f.entries_.push_back(std::move(entries[i]));
  }

  if (auto it = f.metadata_.find(kDataChecksumKey);
      it != f.metadata_.end() && checksum == Checksum::verify) {
    std::uint64_t expected = 0;
    try {
      expected = parse_hex64(it->second, where + ": __metadata__ " + kDataChecksumKey);
    } catch (const Error& e) {
      throw Error(e.where(), e.message(), kCorrupt);
    }
    Xxh64Stream hash;
    std::vector<std::uint8_t> chunk(
        static_cast<std::size_t>(std::min<std::uint64_t>(kChecksumChunk, buffer_size)));
    for (std::uint64_t done = 0; done < buffer_size;) {
      const std::size_t step =
          static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), buffer_size - done));
      f.file_->read_at(f.data_start_ + done, {chunk.data(), step});
      hash.update({chunk.data(), step});
      done += step;
    }
    if (hash.digest() != expected)
      throw Error(where,
                  "data checksum mismatch (the metadata says " + it->second +
                      ", the data hashes to " + to_hex64(hash.digest()) + ")",
                  kCorrupt);
  }
  return f;
}

const SafetensorsFile::Entry* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

void SafetensorsFile::check_f32(const std::string& name,
                                std::span<const std::int64_t> expected_shape) const {
  const Entry* e = find(name);
  if (e == nullptr) throw Error(path_.string(), "no tensor named '" + name + "'", kOtherModel);
  const std::string where = path_.string() + ": tensor '" + name + "'";
  if (e->dtype != "F32")
    throw Error(where, "is " + e->dtype + ", expected F32",
                "convert the checkpoint's tensors to F32");
  if (!std::equal(e->shape.begin(), e->shape.end(), expected_shape.begin(), expected_shape.end()))
    throw Error(where,
                "has shape " + shape_text(e->shape) + ", expected " + shape_text(expected_shape),
                kOtherModel);
}

void SafetensorsFile::read_f32(const std::string& name,
                               std::span<const std::int64_t> expected_shape, float* dst) const {
  check_f32(name, expected_shape);
  const Entry* e = find(name);
  const std::uint64_t bytes = e->end - e->begin;
  if (bytes > 0)
    file_->read_at(data_start_ + e->begin,
                   {reinterpret_cast<std::uint8_t*>(dst), static_cast<std::size_t>(bytes)});
}

}  // namespace mb::model
