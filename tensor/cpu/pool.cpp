// CPU pooling: loops over the shared per-element formulas of pool_kernels.h.
#include "tensor/ops/pool_kernels.h"
#include "tensor/parallel.h"
#include "tensor/tensor.h"

namespace cudl::cpu {

void max_pool2d_forward(DType dtype, const PoolGeometry& g, const void* x, void* y,
                        int64_t* argmax) {
  CUDL_DISPATCH_FLOATING(dtype, "max_pool2d", [&] {
    const auto* px = static_cast<const scalar_t*>(x);
    auto* py = static_cast<scalar_t*>(y);
    const int64_t out_plane = g.oh * g.ow;
    parallel_for(0, g.planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const scalar_t* plane = px + p * g.h * g.w;
        for (int64_t i = 0; i < g.oh; ++i)
          for (int64_t j = 0; j < g.ow; ++j) {
            const int64_t o = p * out_plane + i * g.ow + j;
            pool::max_window(g, plane, i, j, py + o, argmax + o);
          }
      }
    });
  });
}

void max_pool2d_backward(DType dtype, const PoolGeometry& g, const void* dy, const int64_t* argmax,
                         void* dx) {
  CUDL_DISPATCH_FLOATING(dtype, "max_pool2d backward", [&] {
    const auto* pdy = static_cast<const scalar_t*>(dy);
    auto* pdx = static_cast<scalar_t*>(dx);
    const int64_t out_plane = g.oh * g.ow;
    parallel_for(0, g.planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        for (int64_t ih = 0; ih < g.h; ++ih)
          for (int64_t iw = 0; iw < g.w; ++iw)
            pdx[(p * g.h + ih) * g.w + iw] =
                pool::max_grad_at(g, pdy + p * out_plane, argmax + p * out_plane, ih, iw);
      }
    });
  });
}

void global_max_pool_forward(DType dtype, int64_t planes, int64_t hw, const void* x, void* y,
                             int64_t* argmax) {
  CUDL_DISPATCH_FLOATING(dtype, "global_max_pool2d", [&] {
    const auto* px = static_cast<const scalar_t*>(x);
    auto* py = static_cast<scalar_t*>(y);
    parallel_for(0, planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(hw, 1)),
                 [&](int64_t begin, int64_t end) {
                   for (int64_t p = begin; p < end; ++p)
                     pool::max_plane(px + p * hw, hw, py + p, argmax + p);
                 });
  });
}

void global_max_pool_backward(DType dtype, int64_t planes, int64_t hw, const void* dy,
                              const int64_t* argmax, void* dx) {
  CUDL_DISPATCH_FLOATING(dtype, "global_max_pool2d backward", [&] {
    const auto* pdy = static_cast<const scalar_t*>(dy);
    auto* pdx = static_cast<scalar_t*>(dx);
    parallel_for(0, planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(hw, 1)),
                 [&](int64_t begin, int64_t end) {
                   for (int64_t p = begin; p < end; ++p)
                     for (int64_t k = 0; k < hw; ++k)
                       pdx[p * hw + k] = k == argmax[p] ? pdy[p] : scalar_t(0);
                 });
  });
}

}  // namespace cudl::cpu
