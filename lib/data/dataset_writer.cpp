#include "data/dataset_writer.hpp"

#include <cstdio>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace mb::data {

std::string split_name(Split s) { return s == Split::train ? "train" : "validation"; }

DatasetWriter::DatasetWriter(const std::filesystem::path& out_dir, const EncoderParams& encoder,
                             DatasetWriterOptions options, ThreadPool& pool)
    : dir_(out_dir), encoder_(encoder), options_(options), pool_(pool) {
  splits_[0].info.name = "train";
  splits_[1].info.name = "validation";
}

DatasetWriter::~DatasetWriter() = default;

void DatasetWriter::add_document(Split split, const std::string& name,
                                 std::span<const std::uint8_t> bytes) {
  try {
    add_document_staged(split, name, bytes);
  } catch (const Error& e) {
    throw dir_.public_error(e);
  }
}

void DatasetWriter::add_document_staged(Split split, const std::string& name,
                                        std::span<const std::uint8_t> bytes) {
  SplitState& s = splits_[static_cast<int>(split)];
  if (s.current && s.current->content_bytes() >= options_.shard_bytes) close_shard(s);
  if (!s.current) {
    char file[64];
    std::snprintf(file, sizeof file, "%s-%05zu.zst", s.info.name.c_str(), s.info.shards.size());
    s.current = std::make_unique<ShardWriter>(dir_.staging() / file, options_.shard, pool_);
  }
  s.current->add_document(name, bytes);
}

void DatasetWriter::close_shard(SplitState& s) {
  ShardSummary sum = s.current->finish();
  s.current.reset();
  ShardInfo info;
  info.file = sum.file;
  info.documents = sum.documents;
  info.bytes = sum.bytes;
  info.compressed_bytes = sum.compressed_bytes;
  info.checksum = sum.checksum;
  s.info.documents += info.documents;
  s.info.bytes += info.bytes;
  s.info.shards.push_back(info);
}

Manifest DatasetWriter::commit() {
  try {
    return commit_staged();
  } catch (const Error& e) {
    throw dir_.public_error(e);
  }
}

Manifest DatasetWriter::commit_staged() {
  Manifest m;
  m.encoder = encoder_;
  for (auto& s : splits_) {
    if (s.current) close_shard(s);
    m.splits.push_back(s.info);  // an empty split is listed with no shards
  }
  write_file_atomic(dir_.staging() / kManifestName, m.to_yaml());
  dir_.commit();
  return m;
}

}  // namespace mb::data
