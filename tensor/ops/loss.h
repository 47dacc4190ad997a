// Losses, with autograd. Formulas in tensor/ops/loss_math.h (shared by CPU and CUDA). Both
// losses compute in float32 for bfloat16 logits (mixed precision) and return a float32 loss.
//
// binary_cross_entropy_with_logits(x, y, reduction, pos_weight)      x, y: (N, C) or any shape
//   l = (1 - y) * x + w * softplus(-x),  w = 1 + (pos_weight - 1) * y   (elementwise)
//     = -(pos_weight * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x)))
//   dl/dx = w * sigmoid(x) - pos_weight * y
//   Stable for every finite logit (no inf or NaN at +-1000), as torch's BCEWithLogitsLoss.
//   pos_weight: optional, shape (C,) with C = the last dim of x (one weight per class).
//   Targets are usually 0/1 but any value in [0, 1] is allowed (soft labels).
//   One pass computes the loss and the gradient; backward only scales the saved gradient by
//   the upstream one. Reduction: kMean (default) = mean over all elements (for (B, C): over all
//   B x C, as fastai), kSum, kNone (output of x's shape).
//
// cross_entropy(x, t, reduction, weight)      x: (N, C) logits, t: (N,) int64 classes in [0, C)
//   l_i = w_{t_i} * (logsumexp(x_i) - x_i[t_i])   (stable: the row maximum is subtracted)
//   dl_i/dx_ij = w_{t_i} * (softmax(x_i)_j - [j == t_i])
//   kMean = sum_i l_i / sum_i w_{t_i} (= the plain mean without weights, as torch), kSum, kNone
//   (output (N,)). weight: optional, shape (C,). A class index outside [0, C) is an error on the
//   CPU; on CUDA it is detected without a host round-trip and turns the loss into NaN.
//
// The targets, pos_weight and weight are constants: none of them may require grad. The saved
// gradient is a constant too, so these losses support first-order gradients only.
//
// fastai picks the loss from the labels: a multi-label dataset (a label list per image, e.g. a
// `labels` column split on spaces) trains with BCE-with-logits, a single-label one with
// cross-entropy. loss_for_labels() and compute_loss() give tools the same choice.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace cudl {

enum class Reduction { kNone, kMean, kSum };

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                        Reduction reduction = Reduction::kMean,
                                        const Tensor& pos_weight = Tensor());

Tensor cross_entropy(const Tensor& logits, const Tensor& targets,
                     Reduction reduction = Reduction::kMean, const Tensor& weight = Tensor());

// ---- choosing the loss from the labels (fastai's rule) ----
enum class LabelKind { kSingleLabel, kMultiLabel };
enum class LossKind { kBCEWithLogits, kCrossEntropy };

const char* toString(LossKind kind);  // "bce_with_logits" / "cross_entropy"
// Multi-label -> BCE-with-logits on multi-hot float targets (N, C); single-label ->
// cross-entropy on int64 class indices (N,).
LossKind loss_for_labels(LabelKind kind);
// From the number of labels of each sample: multi-label when any sample has a number other
// than one. A dataset whose label column is declared as a list (fastai's label_delim) is
// multi-label even if every sample happens to carry one label: pass kMultiLabel directly then.
LabelKind label_kind_from_counts(const std::vector<int64_t>& labels_per_sample);
// The loss of `kind` with its default reduction (mean). Checks that the targets have the form
// that loss expects and says which loss wanted what when they do not.
Tensor compute_loss(LossKind kind, const Tensor& logits, const Tensor& targets);

}  // namespace cudl
