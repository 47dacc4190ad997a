// CudaGraph (tensor/graph.h) on the CUDA runtime's stream capture: cudaStreamBeginCapture in
// relaxed mode on the device's cudl stream, the caching allocator switched to the graph's own
// pool for the duration, cudaStreamEndCapture, cudaGraphInstantiate; replay() sets each
// generator's device offset base with a one-thread kernel and launches the executable graph.
#include <exception>

#include "tensor/cuda/caching_allocator.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/graph.h"
#include "tensor/tensor.h"

namespace cudl {

namespace {
__global__ void set_u64_kernel(uint64_t* dst, uint64_t value) { *dst = value; }
}  // namespace

struct CudaGraph::Impl {
  int device = 0;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  int pool = 0;  // the caching allocator's graph pool, 0 before a capture
  struct Draws {
    Generator* gen;
    Tensor base;      // one uint64 on the device: the generator's offset at each replay
    uint64_t blocks;  // counter blocks one replay draws
  };
  std::vector<Draws> draws;

  void destroy() noexcept {
    try {
      cuda::DeviceGuard guard(device);
      // Waits for running replays, unless another graph is being captured on the stream (a
      // synchronisation would break that capture; the pool's release then waits for its end).
      if ((exec || pool) && !is_capturing(Device::cuda(device)))
        CUDL_CUDA_WARN(cudaStreamSynchronize(cuda::stream(device)));
      if (exec) CUDL_CUDA_WARN(cudaGraphExecDestroy(exec));
      if (graph) CUDL_CUDA_WARN(cudaGraphDestroy(graph));
      exec = nullptr;
      graph = nullptr;
      draws.clear();
      if (pool) cuda::caching_release_graph_pool(device, pool);
      pool = 0;
    } catch (const std::exception& e) {
      log_warning(str("CudaGraph: releasing the graph failed: ", e.what()));
    }
  }
};

CudaGraph::CudaGraph(Device device) : device_(device), impl_(std::make_unique<Impl>()) {
  CUDL_CHECK(device.is_cuda(), "CudaGraph needs a CUDA device, got ", device.str());
  impl_->device = device.index;
}

CudaGraph::~CudaGraph() { impl_->destroy(); }

bool CudaGraph::captured() const { return impl_->exec != nullptr; }

void CudaGraph::capture(const std::function<void()>& fn, const std::vector<Generator*>& generators,
                        size_t reserve_bytes) {
  Impl& m = *impl_;
  CUDL_CHECK(!captured(), "CudaGraph::capture: this graph already holds a capture");
  cuda::DeviceGuard guard(m.device);
  cudaStream_t s = cuda::stream(m.device);
  for (Generator* g : generators) {
    CUDL_CHECK(g != nullptr, "CudaGraph::capture: null generator");
    Impl::Draws d{g, empty({1}, TensorOptions(kInt64).device(device_)), 0};
    m.draws.push_back(std::move(d));
  }
  // Everything the capture allocates must be in place before the driver records addresses.
  m.pool = cuda::caching_begin_graph_pool(m.device, reserve_bytes);
  for (Impl::Draws& d : m.draws) d.gen->begin_capture(static_cast<const uint64_t*>(d.base.data_ptr()));
  cudaError_t begun = cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed);
  std::exception_ptr failure;
  cudaGraph_t graph = nullptr;
  cudaError_t ended = cudaSuccess;
  if (begun == cudaSuccess) {
    try {
      fn();
    } catch (...) {
      failure = std::current_exception();
    }
    ended = cudaStreamEndCapture(s, &graph);
  }
  cuda::caching_end_graph_pool(m.device);
  for (Impl::Draws& d : m.draws) d.blocks = d.gen->end_capture();
  cudaError_t made = cudaSuccess;
  if (begun == cudaSuccess && ended == cudaSuccess && !failure) made = cudaGraphInstantiate(&m.exec, graph, 0ULL);
  if (begun != cudaSuccess || ended != cudaSuccess || made != cudaSuccess || failure) {
    cudaGetLastError();
    if (graph) cudaGraphDestroy(graph);
    m.exec = nullptr;
    m.destroy();
    if (failure) std::rethrow_exception(failure);
    const cudaError_t e = begun != cudaSuccess ? begun : ended != cudaSuccess ? ended : made;
    CUDL_THROW_DEVICE(false, "capturing a CUDA graph on cuda:", m.device, " failed: ",
                      cudaGetErrorName(e), ": ", cudaGetErrorString(e),
                      (e == cudaErrorStreamCaptureInvalidated ||
                               e == cudaErrorStreamCaptureUnsupported
                           ? " (the captured work waited for the device, e.g. item() or a copy "
                             "to the host, or used another stream)"
                           : ""));
  }
  m.graph = graph;
}

void CudaGraph::replay() {
  Impl& m = *impl_;
  CUDL_CHECK(captured(), "CudaGraph::replay: nothing has been captured");
  cuda::DeviceGuard guard(m.device);
  cudaStream_t s = cuda::stream(m.device);
  for (Impl::Draws& d : m.draws) {
    set_u64_kernel<<<1, 1, 0, s>>>(static_cast<uint64_t*>(d.base.data_ptr()), d.gen->offset());
    CUDL_KERNEL_CHECK();
    d.gen->set_offset(d.gen->offset() + d.blocks);
  }
  CUDL_CUDA_CHECK(cudaGraphLaunch(m.exec, s));
}

bool is_capturing(Device device) {
  return device.is_cuda() && cuda::stream_is_capturing(cuda::stream(device.index));
}

}  // namespace cudl
