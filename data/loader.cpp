#include "data/loader.h"

#include <algorithm>
#include <numeric>

#include "data/split.h"
#include "tensor/error.h"

#ifdef CUDL_WITH_CUDA
#include "data/device_copy.h"
#include "tensor/cuda/context.h"
#endif

namespace cudl::data {

struct DataLoader::Staging {
  Tensor images;   // (B, 3, S, S) float32, pinned
  Tensor targets;  // (B, C) float32 or (B) int64, pinned
#ifdef CUDL_WITH_CUDA
  CopyEvent done;  // recorded after the last copy out of this buffer
#endif
};

#ifdef CUDL_WITH_CUDA
struct DataLoader::Ahead {
  int64_t index = 0, generation = 0;
  Batch batch;
  CopyEvent copied;  // recorded on the copy stream after the batch's copies
};
#else
struct DataLoader::Ahead {};
#endif

struct DataLoader::Slot {
  int64_t generation = 0;
  Tensor images, targets;  // host tensors (views of a staging buffer on CUDA targets)
  std::vector<int64_t> indices;
  std::vector<std::string> filenames;
  std::exception_ptr error;
  Staging* staging = nullptr;
};

DataLoader::DataLoader(std::shared_ptr<const ImageDataset> dataset,
                       const DataLoaderOptions& options)
    : dataset_(std::move(dataset)), options_(options), plain_table_(options.normalization) {
  CUDL_CHECK(dataset_, "DataLoader: no dataset");
  CUDL_CHECK(options_.batch_size >= 1, "DataLoader: batch_size must be >= 1, got ",
             options_.batch_size);
  CUDL_CHECK(options_.prefetch >= 1, "DataLoader: prefetch must be >= 1, got ", options_.prefetch);
  CUDL_CHECK(options_.num_workers >= 0, "DataLoader: num_workers must be >= 0, got ",
             options_.num_workers);
  if (options_.device.is_cuda()) {
#ifndef CUDL_WITH_CUDA
    CUDL_THROW("DataLoader: device ", options_.device.str(),
               " asked for, but cudl was built without CUDA");
#else
    CUDL_CHECK(options_.device.index < cuda_device_count(), "DataLoader: device ",
               options_.device.str(), " is not available (", cuda_device_count(), " CUDA devices)");
    use_staging_ = true;
    const int64_t B = options_.batch_size, S = dataset_->image_size(), C = dataset_->num_classes();
    const int count = options_.num_workers == 0 ? 2 : options_.prefetch + 1;
    for (int i = 0; i < count; ++i) {
      auto st = std::make_unique<Staging>();
      st->images = empty({B, 3, S, S}, TensorOptions(kFloat32).pinned());
      st->targets = dataset_->multi_label() ? empty({B, C}, TensorOptions(kFloat32).pinned())
                                            : empty({B}, TensorOptions(kInt64).pinned());
      free_staging_.push_back(st.get());
      staging_.push_back(std::move(st));
    }
#endif
  }
  for (int i = 0; i < options_.num_workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
  for (auto& t : workers_) t.join();
#ifdef CUDL_WITH_CUDA
  try {
    drop_ahead();
  } catch (const std::exception& e) {
    log_warning(std::string("DataLoader: dropping an uploaded batch failed: ") + e.what());
  }
  // Copies may still read the pinned buffers.
  for (auto& st : staging_) {
    try {
      st->done.wait();
    } catch (const std::exception& e) {
      log_warning(std::string("DataLoader: waiting for a batch copy failed: ") + e.what());
    }
  }
#endif
}

int64_t DataLoader::num_batches() const {
  const int64_t n = dataset_->size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  const int64_t n = dataset_->size();
  if (!options_.shuffle) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{0});
    return order;
  }
  RandomState rs(std::vector<uint32_t>{static_cast<uint32_t>(options_.seed),
                                       static_cast<uint32_t>(options_.seed >> 32),
                                       static_cast<uint32_t>(epoch)});
  return rs.permutation(n);
}

void DataLoader::start_epoch(int64_t epoch) {
  CUDL_CHECK(epoch >= 0, "DataLoader::start_epoch: epoch must be >= 0, got ", epoch);
  std::vector<int64_t> order = epoch_order(epoch);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++generation_;
    for (auto& kv : ready_) release(*kv.second);
    ready_.clear();
    epoch_ = epoch;
    order_ = std::move(order);
    batches_ = num_batches();
    next_build_ = 0;
    next_serve_ = 0;
    running_ = true;
  }
  work_cv_.notify_all();
}

void DataLoader::release(Slot& slot) {
  if (slot.staging) {
    free_staging_.push_back(slot.staging);
    slot.staging = nullptr;
    work_cv_.notify_all();
  }
}

void DataLoader::build(int64_t epoch, int64_t batch_index, const std::vector<int64_t>& order,
                       Slot& slot) {
  try {
    const int64_t B = options_.batch_size;
    const int64_t begin = batch_index * B;
    const int64_t n = std::min<int64_t>(B, static_cast<int64_t>(order.size()) - begin);
    const int64_t S = dataset_->image_size(), C = dataset_->num_classes();
    const bool multi = dataset_->multi_label();
    if (slot.staging) {
#ifdef CUDL_WITH_CUDA
      slot.staging->done.wait();  // its previous copy to the GPU has finished reading it
#endif
      slot.images = slot.staging->images.slice(0, 0, n);
      slot.targets = slot.staging->targets.slice(0, 0, n);
    } else {
      slot.images = empty({n, 3, S, S});
      slot.targets = multi ? empty({n, C}) : empty({n}, TensorOptions(kInt64));
    }
    float* images = slot.images.data<float>();
    const size_t per_image = static_cast<size_t>(3 * S * S);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t i = order[static_cast<size_t>(begin + k)];
      slot.indices.push_back(i);
      slot.filenames.push_back(dataset_->item(i).filename);
      const std::shared_ptr<const ResizedImage> img = dataset_->image(i);
      render_image(*img, static_cast<int>(S), options_.augment, options_.seed, epoch, i,
                   options_.normalization, plain_table_,
                   images + static_cast<size_t>(k) * per_image);
      if (multi)
        dataset_->multi_hot(i, slot.targets.data<float>() + k * C);
      else
        slot.targets.data<int64_t>()[k] = dataset_->class_index(i);
    }
  } catch (...) {
    slot.error = std::current_exception();
  }
}

void DataLoader::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_cv_.wait(lock, [&] {
      return stop_ ||
             (running_ && next_build_ < batches_ && next_build_ < next_serve_ + options_.prefetch &&
              (!use_staging_ || !free_staging_.empty()));
    });
    if (stop_) return;
    const int64_t b = next_build_++;
    const int64_t epoch = epoch_;
    auto slot = std::make_unique<Slot>();
    slot->generation = generation_;
    if (use_staging_) {
      slot->staging = free_staging_.back();
      free_staging_.pop_back();
    }
    // The batch's positions, copied so start_epoch may replace order_ meanwhile.
    const int64_t B = options_.batch_size;
    const auto first = order_.begin() + b * B;
    const auto last =
        order_.begin() + std::min<int64_t>((b + 1) * B, static_cast<int64_t>(order_.size()));
    const std::vector<int64_t> positions(first, last);
    lock.unlock();
    build(epoch, 0, positions, *slot);
    lock.lock();
    if (stop_ || slot->generation != generation_) {
      release(*slot);  // a batch of an abandoned epoch
      continue;
    }
    ready_[b] = std::move(slot);
    ready_cv_.notify_all();
  }
}

void DataLoader::finish(std::unique_ptr<Slot> slot, Batch& out) {
  if (slot->error) {
    std::lock_guard<std::mutex> lock(mutex_);
    release(*slot);
    std::rethrow_exception(slot->error);
  }
  Batch b;
  if (slot->staging) {
#ifdef CUDL_WITH_CUDA
    try {
      b.images = upload_async(slot->images, options_.device, slot->staging->done);
      b.targets = upload_async(slot->targets, options_.device, slot->staging->done);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      release(*slot);
      throw;
    }
#endif
    std::lock_guard<std::mutex> lock(mutex_);
    release(*slot);
  } else {
    b.images = slot->images;
    b.targets = slot->targets;
  }
  b.indices = std::move(slot->indices);
  b.filenames = std::move(slot->filenames);
  out = std::move(b);
}

bool DataLoader::next(Batch& out) {
  std::unique_ptr<Slot> slot;
  bool inline_build = false;
  std::vector<int64_t> order;
  int64_t b = 0, epoch = 0;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!running_) {
      lock.unlock();
      start_epoch(epoch_ + 1);
      lock.lock();
    }
    if (next_serve_ >= batches_) {
      running_ = false;
      return false;
    }
    b = next_serve_;
    epoch = epoch_;
#ifdef CUDL_WITH_CUDA
    if (ahead_ && ahead_->index == b && ahead_->generation == generation_) {
      // Uploaded by the previous call: cudl's stream waits for its copy.
      ++next_serve_;
      work_cv_.notify_all();  // the workers' window moved on
      lock.unlock();
      std::unique_ptr<Ahead> a = std::move(ahead_);
      a->copied.make_compute_wait();
      out = std::move(a->batch);
      upload_ahead();
      return true;
    }
#endif
    if (workers_.empty()) {
      inline_build = true;
      slot = std::make_unique<Slot>();
      if (use_staging_) {
        slot->staging = free_staging_.back();
        free_staging_.pop_back();
      }
      order = order_;
      ++next_serve_;
    } else {
      ready_cv_.wait(lock, [&] { return ready_.count(b) > 0; });
      slot = std::move(ready_[b]);
      ready_.erase(b);
      ++next_serve_;
      work_cv_.notify_all();
    }
  }
  if (inline_build) build(epoch, b, order, *slot);
  finish(std::move(slot), out);
  upload_ahead();
  return true;
}

void DataLoader::drop_ahead() {
#ifdef CUDL_WITH_CUDA
  if (!ahead_) return;
  // Its memory goes back to cudl's stream's pool: order that after the copy into it.
  std::unique_ptr<Ahead> a = std::move(ahead_);
  a->copied.make_compute_wait();
#endif
}

void DataLoader::upload_ahead() {
#ifdef CUDL_WITH_CUDA
  if (!use_staging_ || workers_.empty()) return;
  try {
    drop_ahead();  // one of an abandoned epoch
    // Never while cudl's stream is captured into a CUDA graph: the copy would join the graph.
    if (cuda::stream_is_capturing(cuda::stream(options_.device.index))) return;
  } catch (const std::exception& e) {
    log_warning(std::string("DataLoader: no upload ahead: ") + e.what());
    return;
  }
  std::unique_ptr<Slot> slot;
  int64_t index = 0, generation = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    index = next_serve_;
    generation = generation_;
    auto it = ready_.find(index);
    // Only a batch that is built already (next() never waits here) and built well.
    if (!running_ || index >= batches_ || it == ready_.end() || it->second->error) return;
    slot = std::move(it->second);
    ready_.erase(it);
  }
  auto a = std::make_unique<Ahead>();
  a->index = index;
  a->generation = generation;
  try {
    a->batch.images = upload_on_copy_stream(slot->images, options_.device, a->copied);
    a->batch.targets = upload_on_copy_stream(slot->targets, options_.device, a->copied);
    slot->staging->done.record_on_copy_stream(options_.device.index);
  } catch (const std::exception& e) {
    // The batch goes back to be served the ordinary way, whose copy reports the error. A copy
    // may have been issued: let it finish before its memory and pinned buffer are reused.
    log_warning(std::string("DataLoader: upload ahead failed: ") + e.what());
    try {
      synchronize_copy_stream(options_.device);
    } catch (const std::exception&) {
    }
    a.reset();
    std::lock_guard<std::mutex> lock(mutex_);
    if (generation == generation_) {
      ready_[index] = std::move(slot);
    } else {
      release(*slot);
    }
    return;
  }
  a->batch.indices = std::move(slot->indices);
  a->batch.filenames = std::move(slot->filenames);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    release(*slot);
  }
  ahead_ = std::move(a);
#endif
}

}  // namespace cudl::data
