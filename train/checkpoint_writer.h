// CheckpointWriter: writes training checkpoints on a background thread, so that an epoch's
// checkpoint (the model, the optimiser's moments: about 140 MB for ResNet-18, written through a
// temporary file, fsync'ed and renamed; 0.3-0.5 s on the CPU machines of bench/results) does not
// hold up the next epoch.
//
// submit() takes a snapshot of the tensors first (host copies: training may change the live
// ones at once), after waiting for the previous write, so at most one write is in flight and
// checkpoints land in epoch order. A failed write is reported by the next submit() or by
// wait(); the destructor waits too and only logs. Each checkpoint is still atomic: a process
// killed while one is written leaves the previous one intact.
#pragma once

#include <exception>
#include <string>
#include <thread>

#include "models/weights_io.h"

namespace cudl::train {

class CheckpointWriter {
 public:
  CheckpointWriter() = default;
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  void submit(const std::string& path, const Checkpoint& live);
  // Blocks until the last submitted checkpoint is on disk; rethrows its error.
  void wait();

 private:
  std::thread thread_;
  std::exception_ptr error_;
};

// A copy of every tensor on the host (independent storage), ready for another thread.
NamedTensors host_snapshot(const NamedTensors& tensors);

}  // namespace cudl::train
