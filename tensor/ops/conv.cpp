#include "tensor/ops/conv.h"

#include <atomic>

#include "tensor/autocast.h"
#include "tensor/autograd.h"
#include "tensor/ops/conv_kernels.h"
#include "tensor/ops/kernels.h"

namespace cudl {

namespace {
std::atomic<bool> g_benchmark{false};
std::atomic<bool> g_allow_tf32{false};
std::atomic<bool> g_deterministic{false};

ConvAlgoOptions algo_options() {
  ConvAlgoOptions o;
  o.benchmark = g_benchmark;
  o.allow_tf32 = g_allow_tf32;
  o.deterministic = g_deterministic;
  return o;
}
}  // namespace

void set_conv_benchmark(bool on) {
  g_benchmark = on;
}
bool conv_benchmark() {
  return g_benchmark;
}
void set_conv_allow_tf32(bool on) {
  g_allow_tf32 = on;
}
bool conv_allow_tf32() {
  return g_allow_tf32;
}
void set_conv_deterministic(bool on) {
  g_deterministic = on;
}
bool conv_deterministic() {
  return g_deterministic;
}

ConvGeometry conv2d_geometry(const Tensor& x, const Tensor& weight, const Tensor& bias,
                             Size2 stride, Size2 padding, Size2 dilation, int64_t groups) {
  CUDL_CHECK(x.defined() && weight.defined(), "conv2d: undefined input or weight");
  CUDL_CHECK(x.dim() == 4, "conv2d: expected a 4-D input (N, C, H, W), got ", shape_str(x.shape()));
  CUDL_CHECK(weight.dim() == 4, "conv2d: expected a 4-D weight (O, C/groups, kH, kW), got ",
             shape_str(weight.shape()));
  check_same_device_dtype("conv2d (input and weight)", x, weight);
  CUDL_CHECK(isFloating(x.dtype()), "conv2d: ", toString(x.dtype()),
             " input (float32, float64 or bfloat16 expected)");
  CUDL_CHECK(groups >= 1, "conv2d: groups must be >= 1, got ", groups);
  CUDL_CHECK(stride.h >= 1 && stride.w >= 1, "conv2d: stride must be >= 1, got (", stride.h, ", ",
             stride.w, ")");
  CUDL_CHECK(padding.h >= 0 && padding.w >= 0, "conv2d: padding must be >= 0, got (", padding.h,
             ", ", padding.w, ")");
  CUDL_CHECK(dilation.h >= 1 && dilation.w >= 1, "conv2d: dilation must be >= 1, got (", dilation.h,
             ", ", dilation.w, ")");
  ConvGeometry g;
  g.n = x.size(0);
  g.c = x.size(1);
  g.h = x.size(2);
  g.w = x.size(3);
  g.o = weight.size(0);
  g.kh = weight.size(2);
  g.kw = weight.size(3);
  g.sh = stride.h;
  g.sw = stride.w;
  g.ph = padding.h;
  g.pw = padding.w;
  g.dh = dilation.h;
  g.dw = dilation.w;
  g.groups = groups;
  CUDL_CHECK(g.o % groups == 0 && g.c % groups == 0, "conv2d: ", g.c, " input and ", g.o,
             " output channels are not both divisible by groups=", groups);
  CUDL_CHECK(weight.size(1) * groups == g.c, "conv2d: weight ", shape_str(weight.shape()),
             " expects input of shape (N, ", weight.size(1) * groups,
             ", H, W) with groups=", groups, ", got ", shape_str(x.shape()));
  CUDL_CHECK(g.kh >= 1 && g.kw >= 1, "conv2d: empty kernel ", shape_str(weight.shape()));
  if (bias.defined()) {
    check_same_device_dtype("conv2d (input and bias)", x, bias);
    CUDL_CHECK(bias.dim() == 1 && bias.size(0) == g.o, "conv2d: bias of shape (", g.o,
               ",) expected, got ", shape_str(bias.shape()));
  }
  g.oh = window_out_size(g.h, g.kh, g.sh, g.ph, g.dh);
  g.ow = window_out_size(g.w, g.kw, g.sw, g.pw, g.dw);
  CUDL_CHECK(g.oh > 0 && g.ow > 0, "conv2d: input ", shape_str(x.shape()), " padded by (", g.ph,
             ", ", g.pw, ") is smaller than the dilated kernel (", g.dh * (g.kh - 1) + 1, ", ",
             g.dw * (g.kw - 1) + 1, ")");
  return g;
}

Tensor conv2d(const Tensor& x_arg, const Tensor& w_arg, const Tensor& b_arg, Size2 stride,
              Size2 padding, Size2 dilation, int64_t groups) {
  // Under autocast, float32 operands run as bfloat16 (autocast.h).
  const Tensor x_in = autocast_operand(x_arg), w_in = autocast_operand(w_arg),
               b_in = autocast_operand(b_arg);
  ConvGeometry g = conv2d_geometry(x_in, w_in, b_in, stride, padding, dilation, groups);
  const MemoryFormat fmt = suggest_memory_format(x_in);
  if (fmt == MemoryFormat::kChannelsLast) {
    // cuDNN has no NHWC float64 convolutions (PyTorch keeps float64 off them too): convert on
    // the way in and out (differentiably).
    if (x_in.device().is_cuda() && x_in.dtype() == kFloat64)
      return conv2d(x_in.contiguous(), w_in, b_in, stride, padding, dilation, groups)
          .contiguous(MemoryFormat::kChannelsLast);
    g.channels_last = true;
  }
  // The kernels read dense memory in g's layout; views and other layouts are copied once here.
  Tensor x = x_in.detach().contiguous(fmt);
  // The weight's layout (ConvGeometry): channels-last on CUDA only.
  const MemoryFormat wfmt = x_in.device().is_cuda() ? fmt : MemoryFormat::kContiguous;
  Tensor w = w_in.detach().contiguous(wfmt);
  Tensor b = b_in.defined() ? b_in.detach().contiguous() : Tensor();
  const Shape y_shape{g.n, g.o, g.oh, g.ow};
  Tensor y = empty_strided(y_shape, memory_format_strides(y_shape, fmt),
                           TensorOptions(x.dtype()).device(x.device()));
  if (y.numel() > 0) {
    CUDL_ON_DEVICE(x.device(), conv2d_forward, x.dtype(), g, x.data_ptr(), w.data_ptr(),
                   b.defined() ? b.data_ptr() : nullptr, y.data_ptr(), algo_options());
  }
  if (needs_grad({x_in, w_in, b_in})) {
    const bool gx = x_in.requires_grad(), gw = w_in.requires_grad();
    const bool gb = b_in.defined() && b_in.requires_grad();
    set_grad_fn(y, "Conv2dBackward", {x_in, w_in, b_in},
                [x, w, g, gx, gw, gb, fmt, wfmt, has_bias = b.defined()](const Tensor& dy_in) {
                  Tensor dy = dy_in.contiguous(fmt);
                  const TensorOptions o = TensorOptions(x.dtype()).device(x.device());
                  // dx and dw in the layout of x and w (autograd accumulates any layout).
                  Tensor dx = gx ? empty_like(x, fmt) : Tensor();
                  Tensor dw = gw ? empty_like(w, wfmt) : Tensor();
                  Tensor db = gb ? empty({g.o}, o) : Tensor();
                  if (dy.numel() == 0) {
                    for (Tensor* t : {&dx, &dw, &db})
                      if (t->defined()) t->zero_();
                  } else {
                    CUDL_ON_DEVICE(x.device(), conv2d_backward, x.dtype(), g, x.data_ptr(),
                                   w.data_ptr(), dy.data_ptr(), gx ? dx.data_ptr() : nullptr,
                                   gw ? dw.data_ptr() : nullptr, gb ? db.data_ptr() : nullptr,
                                   algo_options());
                  }
                  return std::vector<Tensor>{dx, dw, has_bias ? db : Tensor()};
                });
  }
  return y;
}

}  // namespace cudl
