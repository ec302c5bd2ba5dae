#include "data/shard_writer.hpp"

#include <zstd.h>

#include <memory>

#include "core/error.hpp"

namespace mb::data {

namespace {
struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
}  // namespace

std::vector<std::uint8_t> compress_frame(std::span<const std::uint8_t> content, int level) {
  // One context per worker thread, reused across frames: creating one costs more than
  // compressing a small frame.
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx(ZSTD_createCCtx());
  ZSTD_CCtx_reset(cctx.get(), ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, 1);
  std::vector<std::uint8_t> out(ZSTD_compressBound(content.size()));
  const std::size_t n =
      ZSTD_compress2(cctx.get(), out.data(), out.size(), content.data(), content.size());
  if (ZSTD_isError(n))
    throw Error("zstd", std::string("compression failed: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

ShardWriter::ShardWriter(std::filesystem::path path, ShardWriterOptions options, ThreadPool& pool)
    : path_(std::move(path)), options_(options), pool_(pool), file_(path_) {
  if (options_.frame_bytes == 0) options_.frame_bytes = 1;
  index_.doc_starts.push_back(0);
  pending_.reserve(options_.frame_bytes);
}

ShardWriter::~ShardWriter() {
  // Let running compressions finish before their buffers go away; errors are moot here.
  for (auto& f : in_flight_)
    if (f.compressed.valid()) f.compressed.wait();
}

void ShardWriter::add_document(const std::string& name, std::span<const std::uint8_t> bytes) {
  while (!bytes.empty()) {
    const std::size_t room = options_.frame_bytes - pending_.size();
    const std::size_t take = std::min(room, bytes.size());
    pending_.insert(pending_.end(), bytes.begin(),
                    bytes.begin() + static_cast<std::ptrdiff_t>(take));
    bytes = bytes.subspan(take);
    content_ += take;
    if (pending_.size() == options_.frame_bytes) submit_frame();
  }
  index_.doc_names.push_back(name);
  index_.doc_starts.push_back(content_);
}

void ShardWriter::submit_frame() {
  if (pending_.empty()) return;
  auto content = std::make_shared<std::vector<std::uint8_t>>(std::move(pending_));
  pending_ = {};
  pending_.reserve(options_.frame_bytes);
  const int level = options_.level;
  InFlight f{pool_.submit([content, level] { return compress_frame(*content, level); }),
             frame_content_offset_, content->size()};
  frame_content_offset_ += content->size();
  in_flight_.push_back(std::move(f));
  // Bound the memory held by frames waiting to be written.
  while (in_flight_.size() > 2 * static_cast<std::size_t>(pool_.size())) write_oldest_frame();
}

void ShardWriter::write_oldest_frame() {
  InFlight f = std::move(in_flight_.front());
  in_flight_.pop_front();
  std::vector<std::uint8_t> compressed = f.compressed.get();
  FrameEntry e;
  e.compressed_offset = file_.bytes_written();
  e.compressed_size = compressed.size();
  e.content_offset = f.content_offset;
  e.content_size = f.content_size;
  e.checksum = xxh64(compressed);
  index_.frames.push_back(e);
  write_bytes(compressed);
}

void ShardWriter::write_bytes(std::span<const std::uint8_t> bytes) {
  file_.write(bytes);
  file_hash_.update(bytes);
}

ShardSummary ShardWriter::finish() {
  submit_frame();
  while (!in_flight_.empty()) write_oldest_frame();
  write_bytes(serialize_index(index_));
  ShardSummary s;
  s.file = path_.filename().string();
  s.documents = documents();
  s.bytes = content_;
  s.compressed_bytes = file_.bytes_written();
  s.checksum = file_hash_.digest();
  file_.commit();
  return s;
}

}  // namespace mb::data
