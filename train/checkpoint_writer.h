// CheckpointWriter: writes training checkpoints on a background thread, so that an epoch's
// checkpoint (the model and the optimiser's moments: about 140 MB for ResNet-18, written through
// a temporary file, fsync'ed and renamed; 0.3-0.5 s on the CPU machines of bench/results) never
// holds up training. That matters most where epochs are short: the notebook's 103 training
// images take a fraction of a second per epoch on a GPU, less than one checkpoint write.
//
// submit() takes a snapshot of the tensors (host copies: training changes the live ones at
// once) and returns. One write runs at a time; a checkpoint submitted while one is being written
// waits, and a newer one replaces it (only the latest is worth writing), so the files on disk
// are always a complete, recent epoch, in order. Each write is atomic: a process killed during
// one leaves the previous checkpoint intact. A failed write is reported by the next submit() or
// by wait(), which blocks until the last submitted checkpoint is on disk; the destructor waits
// too and only logs. on_written, when given, is called on the writing thread with the path of
// each checkpoint once it is on disk.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "models/weights_io.h"

namespace cudl::train {

class CheckpointWriter {
 public:
  using OnWritten = std::function<void(const std::string& path)>;
  explicit CheckpointWriter(OnWritten on_written = {}) : on_written_(std::move(on_written)) {}
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  void submit(const std::string& path, const Checkpoint& live);
  void wait();
  int64_t written() const;   // checkpoints written so far
  int64_t replaced() const;  // submitted ones a newer one replaced before they were written

 private:
  struct Job {
    std::string path;
    Checkpoint checkpoint;
  };
  void run();  // the writing thread: the pending jobs, one after another

  OnWritten on_written_;
  mutable std::mutex mutex_;
  std::condition_variable idle_;
  std::unique_ptr<Job> pending_;
  bool writing_ = false;
  std::thread thread_;
  std::exception_ptr error_;
  int64_t written_ = 0, replaced_ = 0;
};

// A copy of every tensor on the host (independent storage), ready for another thread.
NamedTensors host_snapshot(const NamedTensors& tensors);

}  // namespace cudl::train
