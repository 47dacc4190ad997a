#include "tensor/ops/batch_norm.h"

#include "tensor/autograd.h"
#include "tensor/ops/batch_norm_kernels.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/kernels.h"
#include "tensor/ops/reduce.h"

namespace cudl {

namespace {

void check_channel_vector(const Tensor& x, const Tensor& t, const char* what,
                          bool need_contiguous) {
  if (!t.defined()) return;
  const int64_t c = x.size(1);
  CUDL_CHECK(t.dim() == 1 && t.size(0) == c, "batch_norm: ", what, " of shape (", c,
             ",) expected for an input of shape ", shape_str(x.shape()), ", got ",
             shape_str(t.shape()));
  CUDL_CHECK(t.device() == x.device(), "batch_norm: ", what, " is on ", t.device().str(),
             " but the input is on ", x.device().str());
  CUDL_CHECK(t.dtype() == compute_dtype(x.dtype()), "batch_norm: ", what, " is ",
             toString(t.dtype()), " but the input is ", toString(x.dtype()), " (",
             toString(compute_dtype(x.dtype())), " expected)");
  CUDL_CHECK(!need_contiguous || t.is_contiguous(), "batch_norm: ", what,
             " must be contiguous (it is updated in place)");
}

// Sum over every dim but the channel dim, kept as (1, C, 1, ...).
Tensor sum_but_channel(const Tensor& t) {
  std::vector<int> dims;
  for (int d = 0; d < t.dim(); ++d)
    if (d != 1) dims.push_back(d);
  return sum(t, dims, true);
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum, double eps) {
  return batch_norm_act(x, weight, bias, running_mean, running_var, training, momentum, eps,
                        Tensor(), false);
}

Tensor batch_norm_act(const Tensor& x_in, const Tensor& weight, const Tensor& bias,
                      const Tensor& running_mean, const Tensor& running_var, bool training,
                      double momentum, double eps, const Tensor& residual_in, bool relu) {
  CUDL_CHECK(x_in.defined(), "batch_norm: undefined input");
  CUDL_CHECK(x_in.dim() >= 2, "batch_norm: expected an input of shape (N, C, ...), got ",
             shape_str(x_in.shape()));
  CUDL_CHECK(isFloating(x_in.dtype()), "batch_norm: ", toString(x_in.dtype()),
             " input (float32, float64 or bfloat16 expected)");
  CUDL_CHECK(eps >= 0.0, "batch_norm: eps must be >= 0, got ", eps);
  check_channel_vector(x_in, weight, "weight", false);
  check_channel_vector(x_in, bias, "bias", false);
  check_channel_vector(x_in, running_mean, "running_mean", true);
  check_channel_vector(x_in, running_var, "running_var", true);
  CUDL_CHECK(running_mean.defined() == running_var.defined(),
             "batch_norm: running_mean and running_var must both be given or both be undefined");
  CUDL_CHECK(training || running_mean.defined(),
             "batch_norm: eval mode needs running_mean and running_var");
  if (residual_in.defined()) {
    CUDL_CHECK(residual_in.shape() == x_in.shape(), "batch_norm: residual of shape ",
               shape_str(residual_in.shape()), " for an input of shape ", shape_str(x_in.shape()),
               " (they must match)");
    check_same_device_dtype("batch_norm (input and residual)", x_in, residual_in);
  }
  const int64_t n = x_in.size(0), c = x_in.size(1);
  const int64_t s = c == 0 || n == 0 ? 0 : x_in.numel() / (n * c);
  if (training) {
    CUDL_CHECK(n * s > 1,
               "batch_norm: expected more than 1 value per channel when training, got "
               "input of shape ",
               shape_str(x_in.shape()));
  }
  const Device dev = x_in.device();
  // Parameters and statistics in the compute dtype (float32 for bfloat16 activations).
  const TensorOptions po = TensorOptions(compute_dtype(x_in.dtype())).device(dev);
  // A channels-last input stays channels-last: the kernels read (n, s, c) memory as well, and
  // y, the residual, dy and dx share x's layout.
  const MemoryFormat fmt = suggest_memory_format(x_in);
  const bool cl = fmt == MemoryFormat::kChannelsLast;
  if (cl && dev.is_cuda() && x_in.dtype() == kFloat64) {
    // cuDNN's NHWC batch norm is for float32 and half types: float64 runs row-major.
    const Tensor r = residual_in.defined() ? residual_in.contiguous() : Tensor();
    return batch_norm_act(x_in.contiguous(), weight, bias, running_mean, running_var, training,
                          momentum, eps, r, relu)
        .contiguous(MemoryFormat::kChannelsLast);
  }
  Tensor x = x_in.detach().contiguous(fmt);
  Tensor w = weight.defined() ? weight.detach().contiguous() : ones({c}, po);
  Tensor b = bias.defined() ? bias.detach().contiguous() : zeros({c}, po);
  Tensor r = residual_in.defined() ? residual_in.detach().contiguous(fmt) : Tensor();
  const void* rp = r.defined() ? r.data_ptr() : nullptr;
  Tensor y = empty_like(x, fmt);
  const bool gx = x_in.requires_grad();
  const bool gw = weight.defined() && weight.requires_grad();
  const bool gb = bias.defined() && bias.requires_grad();
  const bool gr = residual_in.defined() && residual_in.requires_grad();
  // The gradient reaching bn(x) + residual: dy where the ReLU passed its input (y > 0), else 0.
  // y is kept detached (same storage, no autograd link back to its own node); it is the next
  // layer's input, so keeping it costs no memory.
  auto pre_relu_grad = [relu, y_kept = relu ? y.detach() : Tensor()](const Tensor& dy) {
    return relu ? binary_op(BinaryOp::kReluBackward, dy, y_kept) : dy;
  };

  if (training) {
    Tensor save_mean = empty({c}, po), save_invstd = empty({c}, po);
    {
      NoGradGuard ng;  // running statistics are updated outside autograd
      CUDL_ON_DEVICE(dev, batch_norm_forward_train, x.dtype(), n, c, s, x.data_ptr(), w.data_ptr(),
                     b.data_ptr(), y.data_ptr(), save_mean.data_ptr(), save_invstd.data_ptr(),
                     running_mean.defined() ? running_mean.data_ptr() : nullptr,
                     running_var.defined() ? running_var.data_ptr() : nullptr, momentum, eps, rp,
                     relu, cl);
    }
    if (needs_grad({x_in, weight, bias, residual_in})) {
      set_grad_fn(y, "BatchNormBackward", {x_in, weight, bias, residual_in},
                  [x, w, save_mean, save_invstd, n, c, s, eps, gx, gw, gb, gr, fmt, cl,
                   pre_relu_grad](const Tensor& dy_in) {
                    NoGradGuard ng;
                    Tensor dy = pre_relu_grad(dy_in).contiguous(fmt);
                    Tensor dx, dw, db;
                    if (gx || gw || gb) {
                      dx = empty_like(x, fmt), dw = empty_like(w), db = empty_like(w);
                      CUDL_ON_DEVICE(x.device(), batch_norm_backward_train, x.dtype(), n, c, s,
                                     x.data_ptr(), dy.data_ptr(), w.data_ptr(),
                                     save_mean.data_ptr(), save_invstd.data_ptr(), eps,
                                     dx.data_ptr(), dw.data_ptr(), db.data_ptr(), cl);
                    }
                    return std::vector<Tensor>{gx ? dx : Tensor(), gw ? dw : Tensor(),
                                               gb ? db : Tensor(), gr ? dy : Tensor()};
                  });
    }
    return y;
  }

  CUDL_ON_DEVICE(dev, batch_norm_forward_eval, x.dtype(), n, c, s, x.data_ptr(), w.data_ptr(),
                 b.data_ptr(), running_mean.data_ptr(), running_var.data_ptr(), eps, y.data_ptr(),
                 rp, relu, cl);
  if (needs_grad({x_in, weight, bias, residual_in})) {
    // Copies of the statistics: a later training step may update the buffers in place before
    // this backward runs.
    Tensor rm = running_mean.detach().clone(), rv = running_var.detach().clone();
    set_grad_fn(y, "BatchNormEvalBackward", {x_in, weight, bias, residual_in},
                [x = gw ? x : Tensor(), w, rm, rv, eps, gx, gw, gb, gr,
                 pre_relu_grad](const Tensor& dy_in) {
                  NoGradGuard ng;
                  const Tensor g = pre_relu_grad(dy_in);
                  // In the parameters' dtype; dx goes back to the input's.
                  const Tensor dy = g.to(w.dtype());
                  Shape bshape(dy.dim(), 1);
                  bshape[1] = w.size(0);
                  Tensor invstd = rdiv(1.0, sqrt(rv + eps)).reshape(bshape);
                  Tensor dx, dw, db;
                  if (gx) dx = (dy * (w.reshape(bshape) * invstd)).to(g.dtype());
                  if (gw)
                    dw = sum_but_channel(dy * ((x.to(w.dtype()) - rm.reshape(bshape)) * invstd))
                             .reshape({-1});
                  if (gb) db = sum_but_channel(dy).reshape({-1});
                  return std::vector<Tensor>{dx, dw, db, gr ? g : Tensor()};
                });
  }
  return y;
}

void increment_counter_(Tensor& counter) {
  CUDL_CHECK(counter.defined() && counter.dtype() == kInt64 && counter.numel() == 1,
             "increment_counter_: expected a one-element int64 tensor, got ", counter.info());
  CUDL_ON_DEVICE(counter.device(), increment_counter, counter.data<int64_t>());
}

}  // namespace cudl
