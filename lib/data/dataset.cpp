#include "data/dataset.hpp"

#include <algorithm>
#include <system_error>

#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/hash.hpp"

namespace mb::data {

namespace fs = std::filesystem;

namespace {
const char* kRecreate = "re-create the dataset with `megabyte prepare`";

void check_shard_against_manifest(const ShardReader& r, const ShardInfo& info) {
  const std::string where = r.path().string();
  if (r.file_size() != info.compressed_bytes)
    throw Error(where,
                "size is " + std::to_string(r.file_size()) + " bytes, dataset.yaml says " +
                    std::to_string(info.compressed_bytes),
                "the shard is truncated or was replaced; " + std::string(kRecreate));
  if (r.documents() != info.documents || r.index().content_bytes() != info.bytes)
    throw Error(where,
                "holds " + std::to_string(r.documents()) + " documents and " +
                    std::to_string(r.index().content_bytes()) + " bytes, dataset.yaml says " +
                    std::to_string(info.documents) + " and " + std::to_string(info.bytes),
                kRecreate);
}

ShardReader open_shard(const fs::path& dir, const ShardInfo& info, FrameCache* cache,
                       std::uint64_t key) {
  const fs::path path = dir / info.file;
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw Error(path.string(), "shard is missing (listed in dataset.yaml)",
                "restore the file or " + std::string(kRecreate));
  ShardReader r(path, cache, key);
  check_shard_against_manifest(r, info);
  return r;
}
}  // namespace

SplitReader::SplitReader(const fs::path& dir, const SplitInfo& info, FrameCache* cache,
                         std::uint64_t& next_key)
    : name_(info.name), bytes_(info.bytes) {
  doc_offsets_.push_back(0);
  for (const auto& sh : info.shards) {
    shards_.push_back(open_shard(dir, sh, cache, next_key));
    next_key += shards_.back().index().frames.size();
    doc_offsets_.push_back(doc_offsets_.back() + shards_.back().documents());
  }
}

std::pair<std::size_t, std::uint64_t> SplitReader::locate(std::uint64_t doc) const {
  if (doc >= documents())
    throw Error("split '" + name_ + "'", "document " + std::to_string(doc) + " is out of range (" +
                                             std::to_string(documents()) + " documents)");
  auto it = std::upper_bound(doc_offsets_.begin(), doc_offsets_.end(), doc);
  std::size_t shard = static_cast<std::size_t>(it - doc_offsets_.begin()) - 1;
  return {shard, doc - doc_offsets_[shard]};
}

std::uint64_t SplitReader::document_size(std::uint64_t doc) const {
  auto [s, d] = locate(doc);
  return shards_[s].document_size(d);
}

const std::string& SplitReader::document_name(std::uint64_t doc) const {
  auto [s, d] = locate(doc);
  return shards_[s].index().doc_names[d];
}

void SplitReader::read(std::uint64_t doc, std::uint64_t offset, std::span<std::uint8_t> out) const {
  auto [s, d] = locate(doc);
  shards_[s].read(d, offset, out);
}

std::vector<std::uint8_t> SplitReader::read_document(std::uint64_t doc) const {
  std::vector<std::uint8_t> out(document_size(doc));
  read(doc, 0, out);
  return out;
}

Dataset Dataset::open(const fs::path& dir, DatasetOptions options) {
  Dataset ds;
  ds.dir_ = dir;
  ds.manifest_ = Manifest::load(dir);
  ds.cache_ = std::make_unique<FrameCache>(options.cache_bytes);
  std::uint64_t key = 0;
  for (const auto& s : ds.manifest_.splits) ds.splits_.emplace_back(dir, s, ds.cache_.get(), key);
  return ds;
}

bool Dataset::has_split(const std::string& name) const {
  return std::any_of(splits_.begin(), splits_.end(),
                     [&](const SplitReader& s) { return s.name() == name; });
}

const SplitReader& Dataset::split(const std::string& name) const {
  for (const auto& s : splits_)
    if (s.name() == name) return s;
  std::string have;
  for (const auto& s : splits_) have += (have.empty() ? "" : ", ") + s.name();
  throw Error(dir_.string(), "has no split '" + name + "'",
              "its splits are: " + (have.empty() ? "none" : have));
}

void verify_shard(const fs::path& dir, const ShardInfo& info) {
  ShardReader r = open_shard(dir, info, nullptr, 0);
  // Whole-file checksum first: it catches a fault anywhere, index included. Then the
  // frames, to say where the fault is.
  ReadOnlyFile f(dir / info.file);
  Xxh64Stream h;
  std::vector<std::uint8_t> buf(1 << 20);
  for (std::uint64_t off = 0; off < f.size(); off += buf.size()) {
    std::span<std::uint8_t> chunk(
        buf.data(), static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), f.size() - off)));
    f.read_at(off, chunk);
    h.update(chunk);
  }
  const bool file_ok = h.digest() == info.checksum;
  r.verify_frames();
  if (!file_ok)
    throw Error(r.path().string(),
                "checksum mismatch against dataset.yaml (xxh64 " + to_hex64(h.digest()) +
                    ", expected " + to_hex64(info.checksum) + ")",
                kRecreate);
}

}  // namespace mb::data
