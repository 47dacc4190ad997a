#include "tensor/ops/pool.h"

#include "tensor/autograd.h"
#include "tensor/ops/kernels.h"
#include "tensor/ops/pool_kernels.h"
#include "tensor/ops/reduce.h"

namespace cudl {

namespace {
void check_4d(const Tensor& x, const char* op) {
  CUDL_CHECK(x.defined(), op, ": undefined input");
  CUDL_CHECK(x.dim() == 4, op, ": expected a 4-D input (N, C, H, W), got ", shape_str(x.shape()));
  CUDL_CHECK(isFloating(x.dtype()), op, ": ", toString(x.dtype()),
             " input (float32, float64 or bfloat16 expected)");
}
}  // namespace

Tensor max_pool2d(const Tensor& x_in, Size2 kernel, Size2 stride, Size2 padding, Size2 dilation) {
  check_4d(x_in, "max_pool2d");
  CUDL_CHECK(kernel.h >= 1 && kernel.w >= 1 && stride.h >= 1 && stride.w >= 1 && dilation.h >= 1 &&
                 dilation.w >= 1,
             "max_pool2d: kernel, stride and dilation must be >= 1, got kernel (", kernel.h, ", ",
             kernel.w, "), stride (", stride.h, ", ", stride.w, "), dilation (", dilation.h, ", ",
             dilation.w, ")");
  CUDL_CHECK(
      padding.h >= 0 && padding.w >= 0 && padding.h * 2 <= kernel.h && padding.w * 2 <= kernel.w,
      "max_pool2d: padding must be between 0 and half the kernel size, got padding (", padding.h,
      ", ", padding.w, ") for kernel (", kernel.h, ", ", kernel.w, ")");
  PoolGeometry g;
  g.planes = x_in.size(0) * x_in.size(1);
  g.h = x_in.size(2);
  g.w = x_in.size(3);
  g.kh = kernel.h;
  g.kw = kernel.w;
  g.sh = stride.h;
  g.sw = stride.w;
  g.ph = padding.h;
  g.pw = padding.w;
  g.dh = dilation.h;
  g.dw = dilation.w;
  g.oh = window_out_size(g.h, g.kh, g.sh, g.ph, g.dh);
  g.ow = window_out_size(g.w, g.kw, g.sw, g.pw, g.dw);
  CUDL_CHECK(g.oh > 0 && g.ow > 0, "max_pool2d: input ", shape_str(x_in.shape()),
             " is too small for kernel (", g.kh, ", ", g.kw, ") with padding (", g.ph, ", ", g.pw,
             ") and dilation (", g.dh, ", ", g.dw, ")");
  // A channels-last input gives a channels-last output (and input gradient).
  const MemoryFormat fmt = suggest_memory_format(x_in);
  if (fmt == MemoryFormat::kChannelsLast) g.channels = x_in.size(1);
  Tensor x = x_in.detach().contiguous(fmt);
  const TensorOptions o = TensorOptions(x.dtype()).device(x.device());
  const Shape y_shape{x.size(0), x.size(1), g.oh, g.ow};
  Tensor y = empty_strided(y_shape, memory_format_strides(y_shape, fmt), o);
  Tensor argmax = empty({y.numel()}, TensorOptions(kInt64).device(x.device()));  // y's layout
  if (y.numel() > 0) {
    CUDL_ON_DEVICE(x.device(), max_pool2d_forward, x.dtype(), g, x.data_ptr(), y.data_ptr(),
                   argmax.data<int64_t>());
  }
  if (needs_grad({x_in})) {
    set_grad_fn(y, "MaxPool2dBackward", {x_in},
                [g, argmax, fmt, in_shape = x.shape()](const Tensor& dy_in) {
                  Tensor dy = dy_in.contiguous(fmt);
                  Tensor dx = empty_strided(in_shape, memory_format_strides(in_shape, fmt),
                                            TensorOptions(dy.dtype()).device(dy.device()));
                  if (dx.numel() > 0) {
                    CUDL_ON_DEVICE(dy.device(), max_pool2d_backward, dy.dtype(), g, dy.data_ptr(),
                                   argmax.data<int64_t>(), dx.data_ptr());
                  }
                  return std::vector<Tensor>{dx};
                });
  }
  return y;
}

Tensor global_max_pool2d(const Tensor& x_in) {
  check_4d(x_in, "global_max_pool2d");
  const int64_t planes = x_in.size(0) * x_in.size(1), hw = x_in.size(2) * x_in.size(3);
  CUDL_CHECK(hw > 0 || planes == 0, "global_max_pool2d: empty spatial size in input ",
             shape_str(x_in.shape()));
  // Channels-last input: read in place, and its gradient is channels-last too. y (N, C, 1, 1)
  // has the same memory in both layouts.
  const MemoryFormat fmt = suggest_memory_format(x_in);
  const int64_t channels = fmt == MemoryFormat::kChannelsLast ? x_in.size(1) : 0;
  Tensor x = x_in.detach().contiguous(fmt);
  Tensor y = empty({x.size(0), x.size(1), 1, 1}, TensorOptions(x.dtype()).device(x.device()));
  Tensor argmax = empty({planes}, TensorOptions(kInt64).device(x.device()));
  if (planes > 0) {
    CUDL_ON_DEVICE(x.device(), global_max_pool_forward, x.dtype(), planes, hw, x.data_ptr(),
                   y.data_ptr(), argmax.data<int64_t>(), channels);
  }
  if (needs_grad({x_in})) {
    set_grad_fn(y, "GlobalMaxPool2dBackward", {x_in},
                [planes, hw, argmax, fmt, channels, in_shape = x.shape()](const Tensor& dy_in) {
                  Tensor dy = dy_in.contiguous();
                  Tensor dx = empty_strided(in_shape, memory_format_strides(in_shape, fmt),
                                            TensorOptions(dy.dtype()).device(dy.device()));
                  if (planes > 0) {
                    CUDL_ON_DEVICE(dy.device(), global_max_pool_backward, dy.dtype(), planes, hw,
                                   dy.data_ptr(), argmax.data<int64_t>(), dx.data_ptr(), channels);
                  }
                  return std::vector<Tensor>{dx};
                });
  }
  return y;
}

Tensor global_avg_pool2d(const Tensor& x) {
  check_4d(x, "global_avg_pool2d");
  CUDL_CHECK(x.size(2) * x.size(3) > 0 || x.numel() == 0,
             "global_avg_pool2d: empty spatial size in input ", shape_str(x.shape()));
  if (suggest_memory_format(x) == MemoryFormat::kChannelsLast) {
    // (N, H, W, C) memory: the mean over the middle dim of its row-major (N, H*W, C) view, whose
    // (N, C) result is the memory of (N, C, 1, 1).
    const int64_t n = x.size(0), c = x.size(1);
    return mean(x.permute({0, 2, 3, 1}).reshape({n, x.size(2) * x.size(3), c}), {1}, false)
        .reshape({n, c, 1, 1});
  }
  return mean(x, {2, 3}, true);
}

}  // namespace cudl
