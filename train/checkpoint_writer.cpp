#include "train/checkpoint_writer.h"

#include <utility>

#include "tensor/error.h"

namespace cudl::train {

NamedTensors host_snapshot(const NamedTensors& tensors) {
  NamedTensors out;
  out.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    Tensor d = t.detach();
    out.emplace_back(name, d.device().is_cpu() ? d.clone() : d.to(Device::cpu()).contiguous());
  }
  return out;
}

CheckpointWriter::~CheckpointWriter() {
  try {
    wait();
  } catch (const std::exception& e) {
    log_warning(str("checkpoint not written: ", e.what()));
  }
}

void CheckpointWriter::wait() {
  if (thread_.joinable()) thread_.join();
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void CheckpointWriter::submit(const std::string& path, const Checkpoint& live) {
  wait();
  Checkpoint c = live;
  c.model = host_snapshot(live.model);
  c.optimizer = host_snapshot(live.optimizer);
  thread_ = std::thread([this, path, c = std::move(c)] {
    try {
      save_checkpoint(path, c);
    } catch (...) {
      error_ = std::current_exception();
    }
  });
}

}  // namespace cudl::train
