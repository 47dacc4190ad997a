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

void CheckpointWriter::run() {
  for (;;) {
    std::unique_ptr<Job> job;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!pending_) {
        writing_ = false;
        idle_.notify_all();
        return;
      }
      job = std::move(pending_);
    }
    try {
      save_checkpoint(job->path, job->checkpoint);
      if (on_written_) on_written_(job->path);
      std::lock_guard<std::mutex> lock(mutex_);
      ++written_;
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
    }
  }
}

void CheckpointWriter::submit(const std::string& path, const Checkpoint& live) {
  auto job = std::make_unique<Job>();
  job->path = path;
  job->checkpoint = live;
  job->checkpoint.model = host_snapshot(live.model);
  job->checkpoint.optimizer = host_snapshot(live.optimizer);
  std::unique_lock<std::mutex> lock(mutex_);
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  if (pending_) ++replaced_;
  pending_ = std::move(job);
  if (writing_) return;  // the running thread takes it after its current write
  writing_ = true;
  lock.unlock();
  if (thread_.joinable()) thread_.join();  // a finished thread, or one returning right now
  thread_ = std::thread([this] { run(); });
}

void CheckpointWriter::wait() {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    idle_.wait(lock, [this] { return !writing_; });
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

int64_t CheckpointWriter::written() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return written_;
}

int64_t CheckpointWriter::replaced() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return replaced_;
}

}  // namespace cudl::train
