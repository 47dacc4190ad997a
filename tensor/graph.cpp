// CudaGraph in builds without CUDA: every use says so (the CUDA build has tensor/cuda/graph.cpp).
#ifndef CUDL_WITH_CUDA
#include "tensor/graph.h"

#include "tensor/ops/kernels.h"

namespace cudl {

struct CudaGraph::Impl {};

CudaGraph::CudaGraph(Device device) : device_(device) {
  detail::throw_no_cuda("CudaGraph");
}
CudaGraph::~CudaGraph() = default;
void CudaGraph::capture(const std::function<void()>&, const std::vector<Generator*>&, size_t) {
  detail::throw_no_cuda("CudaGraph::capture");
}
void CudaGraph::replay() { detail::throw_no_cuda("CudaGraph::replay"); }
bool CudaGraph::captured() const { return false; }
bool is_capturing(Device) { return false; }

}  // namespace cudl
#endif
