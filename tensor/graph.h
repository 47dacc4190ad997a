// CudaGraph: records the work a function queues on a CUDA device once, then replays it with
// one launch (cudaGraphLaunch) instead of one launch per kernel, cuDNN and cuBLAS call. For a
// training step of a small batch, where the GPU would otherwise wait for the host to issue
// hundreds of launches, this removes the host from the critical path (PyTorch's
// torch.cuda.CUDAGraph; see README "CUDA graphs").
//
//   CudaGraph g(Device::cuda());
//   g.capture([&] { loss = step(static_x, static_y); }, {&gen});  // records, runs nothing
//   for (...) { static_x.copy_(x); g.replay(); use(loss); }       // runs the recorded work
//
// What capture() records must be replayable:
// - Tensors: what the function allocates comes from a memory pool of the graph's own
//   (tensor/cuda/caching_allocator.h), so the addresses it recorded stay valid and unshared for
//   the graph's life; tensors made before the capture and used in it (inputs, parameters,
//   gradients, optimiser state) must stay alive and in place: feed new data by copying into them.
// - Host values are frozen at capture: shapes, scalars, hyperparameters. Random draws from the
//   generators given to capture() are not: each replay draws the numbers the next eager call
//   would have drawn. A draw on another generator during the capture is an error.
// - Nothing in the function may wait for the device (item(), copies to the host): the capture
//   fails with the driver's message. Warm up with one eager call first, so that cuDNN picks
//   its algorithms and optimisers create their state outside the capture.
// The optimiser's part of a step is replayable through Optimizer::prepare_replay()
// (optim/optimizer.h), which stages the next step's learning rate and step counts.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "tensor/device.h"
#include "tensor/random.h"

namespace cudl {

class CudaGraph {
 public:
  explicit CudaGraph(Device device);  // a CUDA device; throws otherwise
  ~CudaGraph();                       // waits for running replays, then frees the graph's memory
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Runs fn with the device's cudl stream in capture mode. Throws (and leaves the graph empty)
  // when the capture fails; what fn changed on the host stays changed. reserve_bytes: what fn
  // is expected to allocate at its peak (e.g. measured on an eager call with
  // watch_peak_allocated); the graph's pool then starts as one segment of that size, which
  // fragments less than a segment per request (tensor/cuda/caching_allocator.h). 0: none.
  // The segment is given back when its last block is freed: the graph and every tensor the
  // capture made (its outputs too) must be gone.
  void capture(const std::function<void()>& fn, const std::vector<Generator*>& generators = {},
               size_t reserve_bytes = 0);
  // Queues the recorded work on the device's cudl stream (asynchronous, like any kernel).
  void replay();
  bool captured() const;
  Device device() const { return device_; }

 private:
  struct Impl;
  Device device_;
  std::unique_ptr<Impl> impl_;
};

// Whether the current thread's work on `device` is being captured into a CUDA graph (false on
// the CPU and in builds without CUDA).
bool is_capturing(Device device);

}  // namespace cudl
