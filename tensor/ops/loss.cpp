#include "tensor/ops/loss.h"

#include <limits>

#include "tensor/autograd.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/kernels.h"
#include "tensor/ops/loss_kernels.h"
#include "tensor/profiler.h"

namespace cudl {

namespace {

void check_constant(const Tensor& t, const char* op, const char* what) {
  CUDL_CHECK(!(t.defined() && grad_mode_enabled() && t.requires_grad()), op, ": the ", what,
             " require grad, but only the logits are differentiated; pass a detached tensor");
}

// Losses of bfloat16 logits (mixed precision) are computed in float32, as torch.autocast
// does: the differentiable cast hands the gradient back in bfloat16.
Tensor upcast_bfloat16(const Tensor& t) {
  return t.defined() && t.dtype() == kBFloat16 ? t.to(kFloat32) : t;
}

Tensor scalar_out(const Tensor& like) {
  return empty({}, TensorOptions(like.dtype()).device(like.device()));
}

}  // namespace

Tensor binary_cross_entropy_with_logits(const Tensor& logits_in, const Tensor& targets_in,
                                        Reduction reduction, const Tensor& pos_weight) {
  ProfileRange range("bce_with_logits");
  const char* op = "binary_cross_entropy_with_logits";
  CUDL_CHECK(logits_in.defined() && targets_in.defined(), op, ": undefined logits or targets");
  const Tensor logits = upcast_bfloat16(logits_in), targets = upcast_bfloat16(targets_in);
  CUDL_CHECK(logits.dtype() == kFloat32 || logits.dtype() == kFloat64, op,
             ": logits must be float32, float64 or bfloat16, got ", toString(logits.dtype()));
  CUDL_CHECK(targets.shape() == logits.shape(), op, ": targets of shape ",
             shape_str(targets.shape()), " for logits of shape ", shape_str(logits.shape()),
             " (they must match; multi-hot float targets, one per logit)");
  check_same_device_dtype(op, logits, targets);
  check_constant(targets, op, "targets");
  const int64_t n = logits.numel();
  const int64_t c = logits.dim() == 0 ? 1 : logits.shape().back();
  Tensor pw;
  if (pos_weight.defined()) {
    CUDL_CHECK(pos_weight.dim() == 1 && pos_weight.size(0) == c, op, ": pos_weight of shape ",
               shape_str(pos_weight.shape()), " for logits of shape ", shape_str(logits.shape()),
               " (expected ", shape_str({c}), ", one weight per class = the last dim)");
    check_same_device_dtype(op, logits, pos_weight);
    check_constant(pos_weight, op, "pos_weight");
    pw = pos_weight.contiguous();
  }
  Tensor x = logits.contiguous(), y = targets.contiguous();
  const bool want_grad = needs_grad({logits});
  Tensor grad = want_grad ? empty(logits.shape(), TensorOptions(x.dtype()).device(x.device())) : Tensor();
  Tensor out = reduction == Reduction::kNone ? empty(logits.shape(), TensorOptions(x.dtype()).device(x.device()))
                                             : scalar_out(x);
  if (n == 0) {
    // As torch: the mean of nothing is NaN, the sum 0.
    if (reduction != Reduction::kNone)
      out.fill_(reduction == Reduction::kMean ? std::numeric_limits<double>::quiet_NaN() : 0.0);
  } else {
    // The mean's 1/n is folded into the saved gradient, so backward is one multiplication.
    const double scale = reduction == Reduction::kMean ? 1.0 / static_cast<double>(n) : 1.0;
    void* loss_ptr = reduction == Reduction::kNone ? out.data_ptr() : nullptr;
    void* sum_ptr = reduction == Reduction::kNone ? nullptr : out.data_ptr();
    CUDL_ON_DEVICE(x.device(), bce_with_logits, x.dtype(), n, c, x.data_ptr(), y.data_ptr(),
                   pw.defined() ? pw.data_ptr() : nullptr, loss_ptr,
                   want_grad ? grad.data_ptr() : nullptr, scale, sum_ptr, scale);
  }
  if (want_grad) {
    set_grad_fn(out, "BCEWithLogitsBackward", {logits}, [saved = grad](const Tensor& g) {
      // kNone: elementwise; kMean/kSum: g is a scalar that broadcasts.
      return std::vector<Tensor>{binary_op(BinaryOp::kMul, saved, g)};
    });
  }
  return out;
}

Tensor cross_entropy(const Tensor& logits_in, const Tensor& targets, Reduction reduction,
                     const Tensor& weight) {
  ProfileRange range("cross_entropy");
  const char* op = "cross_entropy";
  CUDL_CHECK(logits_in.defined() && targets.defined(), op, ": undefined logits or targets");
  const Tensor logits = upcast_bfloat16(logits_in);
  CUDL_CHECK(logits.dtype() == kFloat32 || logits.dtype() == kFloat64, op,
             ": logits must be float32, float64 or bfloat16, got ", toString(logits.dtype()));
  CUDL_CHECK(logits.dim() == 2 && logits.size(1) > 0, op, ": logits of shape ",
             shape_str(logits.shape()), " (expected (N, C) with C >= 1)");
  const int64_t rows = logits.size(0), c = logits.size(1);
  CUDL_CHECK(targets.dtype() == kInt64, op, ": targets must be int64 class indices, got ",
             toString(targets.dtype()), " (multi-hot float targets belong to BCE-with-logits)");
  CUDL_CHECK(targets.dim() == 1 && targets.size(0) == rows, op, ": targets of shape ",
             shape_str(targets.shape()), " for logits of shape ", shape_str(logits.shape()),
             " (expected ", shape_str({rows}), ")");
  CUDL_CHECK(targets.device() == logits.device(), op, ": targets on ", targets.device().str(),
             " but logits on ", logits.device().str());
  Tensor w;
  if (weight.defined()) {
    CUDL_CHECK(weight.dim() == 1 && weight.size(0) == c, op, ": weight of shape ",
               shape_str(weight.shape()), " (expected ", shape_str({c}), ", one weight per class)");
    check_same_device_dtype(op, logits, weight);
    check_constant(weight, op, "class weights");
    w = weight.contiguous();
  }
  Tensor x = logits.contiguous(), t = targets.contiguous();
  if (t.device().is_cpu()) {
    const int64_t* tp = t.data<int64_t>();
    for (int64_t i = 0; i < rows; ++i)
      CUDL_CHECK(tp[i] >= 0 && tp[i] < c, op, ": target ", tp[i], " of row ", i,
                 " is not a class index in [0, ", c, ")");
  }
  const TensorOptions opts = TensorOptions(x.dtype()).device(x.device());
  const bool want_grad = needs_grad({logits});
  Tensor grad = want_grad ? empty(x.shape(), opts) : Tensor();
  Tensor loss_rows = reduction == Reduction::kNone ? empty({rows}, opts) : Tensor();
  Tensor sums = reduction == Reduction::kNone ? Tensor() : empty({2}, opts);  // {sum w*l, sum w}
  CUDL_ON_DEVICE(x.device(), cross_entropy, x.dtype(), rows, c, x.data_ptr(), t.data<int64_t>(),
                 w.defined() ? w.data_ptr() : nullptr,
                 loss_rows.defined() ? loss_rows.data_ptr() : nullptr,
                 want_grad ? grad.data_ptr() : nullptr, sums.defined() ? sums.data_ptr() : nullptr);
  Tensor out, denom;
  switch (reduction) {
    case Reduction::kNone: out = loss_rows; break;
    case Reduction::kSum: out = sums.select(0, 0).clone(); break;
    case Reduction::kMean:
      denom = sums.select(0, 1).clone();  // the total weight (N without weights)
      out = binary_op(BinaryOp::kDiv, sums.select(0, 0), denom);
      break;
  }
  if (want_grad) {
    set_grad_fn(out, "CrossEntropyBackward", {logits},
                [saved = grad, denom, reduction](const Tensor& g) {
                  Tensor scale = g;
                  if (reduction == Reduction::kNone) scale = g.unsqueeze(1);        // (N, 1)
                  if (reduction == Reduction::kMean) scale = binary_op(BinaryOp::kDiv, g, denom);
                  return std::vector<Tensor>{binary_op(BinaryOp::kMul, saved, scale)};
                });
  }
  return out;
}

const char* toString(LossKind kind) {
  switch (kind) {
    case LossKind::kBCEWithLogits: return "bce_with_logits";
    case LossKind::kCrossEntropy: return "cross_entropy";
  }
  return "unknown loss";
}

LossKind loss_for_labels(LabelKind kind) {
  return kind == LabelKind::kMultiLabel ? LossKind::kBCEWithLogits : LossKind::kCrossEntropy;
}

LabelKind label_kind_from_counts(const std::vector<int64_t>& labels_per_sample) {
  CUDL_CHECK(!labels_per_sample.empty(), "label_kind_from_counts: no samples");
  for (int64_t n : labels_per_sample)
    if (n != 1) return LabelKind::kMultiLabel;
  return LabelKind::kSingleLabel;
}

Tensor compute_loss(LossKind kind, const Tensor& logits, const Tensor& targets) {
  CUDL_CHECK(logits.defined() && targets.defined(), toString(kind),
             ": undefined logits or targets");
  if (kind == LossKind::kBCEWithLogits) {
    CUDL_CHECK(isFloating(targets.dtype()), "bce_with_logits (multi-label) expects multi-hot ",
               "float targets of the logits' shape ", shape_str(logits.shape()), ", got ",
               targets.info());
    return binary_cross_entropy_with_logits(logits, targets);
  }
  CUDL_CHECK(targets.dtype() == kInt64, "cross_entropy (single-label) expects int64 class ",
             "indices of shape ", shape_str({logits.dim() > 0 ? logits.size(0) : 0}), ", got ", targets.info());
  return cross_entropy(logits, targets);
}

}  // namespace cudl
