// DataLoader: batches of normalised images and targets from an ImageDataset, built by worker
// threads ahead of the consumer.
//
// - Order: in dataset order, or (shuffle) per epoch e the permutation
//   numpy.random.RandomState([seed & 0xffffffff, seed >> 32, e]).permutation(n), so an epoch's
//   order is reproducible from (seed, epoch) alone, in C++ or in NumPy.
// - drop_last drops the final incomplete batch (training); otherwise it is served short.
// - Workers (std::thread) build whole batches: cached uint8 image -> optional augmentation ->
//   (x/255 - mean)/std into (N, 3, S, S) float32. At most `prefetch` batches are built ahead of
//   the one the consumer takes next (a bounded queue); batches come out in order whatever thread
//   finishes first. With num_workers = 0, next() builds each batch on the calling thread.
// - On a CUDA device the batch is built in pinned host memory and copied with cudaMemcpyAsync:
//   next() returns device tensors at once, and the workers prepare the following batches
//   meanwhile. With workers, next() also starts the copy of the following batch when it is
//   ready, on the device's copy stream: it then runs while the GPU computes the step of the
//   batch just returned (the step queued after next() waits for it through an event; see
//   data/device_copy.h). Otherwise the copy goes on cudl's stream. The pinned buffers are
//   recycled after their copy has completed (an event per buffer).
// - A worker's exception (an image that cannot be decoded, ...) is rethrown by the next() that
//   would have returned its batch, with the message naming the file; the epoch then continues.
// - Destroying the loader mid-epoch stops the workers (each finishes the image it is on) and
//   joins them.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"
#include "tensor/tensor.h"

namespace cudl::data {

struct Batch {
  Tensor images;   // (N, 3, S, S) float32, normalised
  Tensor targets;  // (N, C) float32 multi-hot (multi-label data) or (N) int64 class indices
  std::vector<int64_t> indices;        // positions in the dataset
  std::vector<std::string> filenames;  // as in the labels file
  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

struct DataLoaderOptions {
  int64_t batch_size = 16;
  bool shuffle = false;
  bool drop_last = false;
  uint64_t seed = 0;
  int num_workers = 2;
  int prefetch = 2;  // batches built ahead (>= 1)
  Device device = Device::cpu();
  AugmentOptions augment;       // off by default
  Normalization normalization;  // ImageNet
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const ImageDataset> dataset, const DataLoaderOptions& options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  const ImageDataset& dataset() const { return *dataset_; }
  const DataLoaderOptions& options() const { return options_; }
  int64_t num_batches() const;
  // Dataset positions in the order epoch `epoch` serves them (before drop_last).
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  // Starts epoch `epoch` (abandoning the rest of a running one).
  void start_epoch(int64_t epoch);
  // The next batch of the current epoch; false (and `batch` untouched) at its end. Without a
  // running epoch, starts the one after the last (0 first).
  bool next(Batch& batch);
  int64_t epoch() const { return epoch_; }

 private:
  struct Slot;     // a host batch being built or ready
  struct Staging;  // a reusable pinned buffer (CUDA targets)
  struct Ahead;    // a batch uploaded before it was asked for (CUDA targets, with workers)

  std::shared_ptr<const ImageDataset> dataset_;
  DataLoaderOptions options_;
  NormalizeTable plain_table_;
  bool use_staging_ = false;

  std::mutex mutex_;
  std::condition_variable work_cv_;   // workers wait for work or a free staging buffer
  std::condition_variable ready_cv_;  // the consumer waits for its batch
  bool stop_ = false;
  bool running_ = false;
  int64_t epoch_ = -1;
  int64_t generation_ = 0;  // bumped by start_epoch: stale batches are dropped
  std::vector<int64_t> order_;
  int64_t batches_ = 0;
  int64_t next_build_ = 0;
  int64_t next_serve_ = 0;
  std::map<int64_t, std::unique_ptr<Slot>> ready_;
  std::vector<std::unique_ptr<Staging>> staging_;
  std::vector<Staging*> free_staging_;
  std::vector<std::thread> workers_;
  std::unique_ptr<Ahead> ahead_;  // used by the consumer's thread only

  void worker_loop();
  void build(int64_t epoch, int64_t batch_index, const std::vector<int64_t>& order, Slot& slot);
  void finish(std::unique_ptr<Slot> slot, Batch& out);
  // Takes the next batch if it is built and starts its copy (CUDA, with workers). Never throws:
  // a batch whose copy fails is left to be served (and to fail) the ordinary way.
  void upload_ahead();
  void drop_ahead();    // forgets an uploaded batch that will not be served
  void release(Slot& slot);  // returns the slot's staging buffer (mutex held)
};

}  // namespace cudl::data
