#include "tensor/ops/metrics.h"

#include <algorithm>
#include <cmath>

#include "tensor/autograd.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/kernels.h"
#include "tensor/ops/metrics_kernels.h"
#include "tensor/ops/metrics_math.h"
#include "tensor/ops/reduce.h"

namespace cudl {

namespace {

const char* const kMetricNames[] = {"hamming_accuracy", "zero_one_accuracy", "precision_micro",
                                    "recall_micro",     "f1_micro",          "precision_macro",
                                    "recall_macro",     "f1_macro"};

// Checks p and y (N, C) and returns them contiguous, y in p's dtype.
std::pair<Tensor, Tensor> prepare(const char* op, const Tensor& probs, const Tensor& targets) {
  CUDL_CHECK(probs.defined() && targets.defined(), op, ": undefined probabilities or targets");
  CUDL_CHECK(probs.dtype() == kFloat32 || probs.dtype() == kFloat64, op,
             ": probabilities must be float32 or float64, got ",
             toString(probs.dtype()));
  CUDL_CHECK(probs.dim() == 2 && probs.size(0) > 0 && probs.size(1) > 0, op,
             ": probabilities of shape ", shape_str(probs.shape()),
             " (expected (N, C) with at least one row and one class)");
  CUDL_CHECK(targets.shape() == probs.shape(), op, ": targets of shape ", shape_str(targets.shape()),
             " for probabilities of shape ", shape_str(probs.shape()), " (they must match)");
  CUDL_CHECK(targets.device() == probs.device(), op, ": targets on ", targets.device().str(),
             " but probabilities on ", probs.device().str());
  Tensor p = probs.detach().contiguous();
  Tensor y = targets.detach();
  if (y.dtype() != p.dtype()) y = y.to(p.dtype());
  return {p, y.contiguous()};
}

}  // namespace

const char* toString(Metric m) { return kMetricNames[static_cast<int>(m)]; }

Metric metric_from_string(const std::string& name) {
  std::string known;
  for (int i = 0; i < 8; ++i) {
    if (name == kMetricNames[i]) return static_cast<Metric>(i);
    known += (i ? ", " : "") + std::string(kMetricNames[i]);
  }
  CUDL_THROW("unknown metric '", name, "' (known: ", known, ")");
}

double ClassificationMetrics::get(Metric m) const {
  switch (m) {
    case Metric::kHammingAccuracy: return hamming_accuracy;
    case Metric::kZeroOneAccuracy: return zero_one_accuracy;
    case Metric::kPrecisionMicro: return precision_micro;
    case Metric::kRecallMicro: return recall_micro;
    case Metric::kF1Micro: return f1_micro;
    case Metric::kPrecisionMacro: return precision_macro;
    case Metric::kRecallMacro: return recall_macro;
    case Metric::kF1Macro: return f1_macro;
  }
  CUDL_THROW("unknown metric");
}

ClassificationMetrics ThresholdCounts::metrics(int64_t k) const {
  CUDL_CHECK(k >= 0 && k < num_thresholds(), "ThresholdCounts::metrics: index ", k,
             " out of range [0, ", num_thresholds(), ")");
  ClassificationMetrics m;
  m.threshold = thresholds[k];
  int64_t stp = 0, sfp = 0, sfn = 0, stn = 0;
  double p_sum = 0, r_sum = 0, f_sum = 0;
  for (int64_t j = 0; j < c; ++j) {
    const int64_t i = k * c + j;
    const double t_p = static_cast<double>(tp[i]), f_p = static_cast<double>(fp[i]),
                 f_n = static_cast<double>(fn[i]);
    stp += tp[i];
    sfp += fp[i];
    sfn += fn[i];
    stn += tn[i];
    p_sum += math::ratio_or_zero(t_p, t_p + f_p);
    r_sum += math::ratio_or_zero(t_p, t_p + f_n);
    f_sum += math::ratio_or_zero(2 * t_p, 2 * t_p + f_p + f_n);
  }
  const double tp_d = static_cast<double>(stp), fp_d = static_cast<double>(sfp),
               fn_d = static_cast<double>(sfn);
  m.hamming_accuracy = static_cast<double>(stp + stn) / static_cast<double>(n * c);
  m.zero_one_accuracy = static_cast<double>(exact[k]) / static_cast<double>(n);
  m.precision_micro = math::ratio_or_zero(tp_d, tp_d + fp_d);
  m.recall_micro = math::ratio_or_zero(tp_d, tp_d + fn_d);
  m.f1_micro = math::ratio_or_zero(2 * tp_d, 2 * tp_d + fp_d + fn_d);
  m.precision_macro = p_sum / static_cast<double>(c);
  m.recall_macro = r_sum / static_cast<double>(c);
  m.f1_macro = f_sum / static_cast<double>(c);
  return m;
}

std::vector<double> sweep_thresholds(int steps) {
  CUDL_CHECK(steps >= 2, "sweep_thresholds: need at least 2 steps, got ", steps);
  std::vector<double> t(steps);
  for (int k = 0; k < steps; ++k) t[k] = static_cast<double>(k) / static_cast<double>(steps - 1);
  return t;
}

ThresholdCounts threshold_counts(const Tensor& probs, const Tensor& targets,
                                 const std::vector<double>& thresholds) {
  NoGradGuard no_grad;
  auto [p, y] = prepare("threshold_counts", probs, targets);
  const int64_t n = p.size(0), c = p.size(1), t = static_cast<int64_t>(thresholds.size());
  CUDL_CHECK(t > 0, "threshold_counts: no thresholds");
  for (int64_t k = 0; k < t; ++k) {
    CUDL_CHECK(!std::isnan(thresholds[k]), "threshold_counts: threshold ", k, " is NaN");
    CUDL_CHECK(k == 0 || thresholds[k - 1] <= thresholds[k],
               "threshold_counts: thresholds must be ascending, but ", thresholds[k - 1],
               " comes before ", thresholds[k]);
  }
  const Device d = p.device();
  // Rounded to p's dtype once, on the host (monotone, so still ascending).
  Tensor thr = from_vector(thresholds, {t}).to(p.dtype()).to(d);
  Tensor hist = zeros({c * (t + 1) * 2}, TensorOptions(kInt64).device(d));
  Tensor rows = zeros({t + 1}, TensorOptions(kInt64).device(d));
  CUDL_ON_DEVICE(d, threshold_histogram, p.dtype(), n, c, p.data_ptr(), y.data_ptr(),
                 thr.data_ptr(), t, hist.data<int64_t>(), rows.data<int64_t>());
  const std::vector<int64_t> h = hist.to_vector<int64_t>(), rw = rows.to_vector<int64_t>();

  ThresholdCounts out;
  out.n = n;
  out.c = c;
  out.thresholds = thresholds;
  out.tp.assign(t * c, 0);
  out.fp.assign(t * c, 0);
  out.fn.assign(t * c, 0);
  out.tn.assign(t * c, 0);
  out.exact.assign(t, 0);
  for (int64_t j = 0; j < c; ++j) {
    const int64_t* hj = h.data() + j * (t + 1) * 2;
    int64_t pos = 0, neg = 0;
    for (int64_t r = 0; r <= t; ++r) {
      neg += hj[2 * r];
      pos += hj[2 * r + 1];
    }
    // At threshold k an element is predicted positive iff its rank is > k: walk k downwards,
    // adding the rank k + 1 bucket each time.
    int64_t tp = 0, fp = 0;
    for (int64_t k = t - 1; k >= 0; --k) {
      fp += hj[2 * (k + 1)];
      tp += hj[2 * (k + 1) + 1];
      out.tp[k * c + j] = tp;
      out.fp[k * c + j] = fp;
      out.fn[k * c + j] = pos - tp;
      out.tn[k * c + j] = neg - fp;
    }
  }
  int64_t run = 0;
  for (int64_t k = 0; k < t; ++k) out.exact[k] = (run += rw[k]);
  return out;
}

ClassificationMetrics classification_metrics(const Tensor& probs, const Tensor& targets,
                                             double threshold) {
  return threshold_counts(probs, targets, {threshold}).metrics(0);
}

double hamming_accuracy(const Tensor& probs, const Tensor& targets, double threshold) {
  return classification_metrics(probs, targets, threshold).hamming_accuracy;
}

double zero_one_accuracy(const Tensor& probs, const Tensor& targets, double threshold) {
  return classification_metrics(probs, targets, threshold).zero_one_accuracy;
}

std::vector<ClassificationMetrics> threshold_sweep(const Tensor& probs, const Tensor& targets,
                                                   int steps) {
  ThresholdCounts counts = threshold_counts(probs, targets, sweep_thresholds(steps));
  std::vector<ClassificationMetrics> out;
  for (int64_t k = 0; k < counts.num_thresholds(); ++k) out.push_back(counts.metrics(k));
  return out;
}

OptimalThreshold optimal_threshold(const std::vector<ClassificationMetrics>& sweep, Metric metric) {
  CUDL_CHECK(!sweep.empty(), "optimal_threshold: empty sweep");
  OptimalThreshold best{0, sweep[0].threshold, sweep[0].get(metric)};
  for (size_t k = 1; k < sweep.size(); ++k) {
    const double v = sweep[k].get(metric);
    if (v > best.value) best = {static_cast<int64_t>(k), sweep[k].threshold, v};
  }
  return best;
}

std::vector<double> average_precision(const Tensor& probs, const Tensor& targets) {
  NoGradGuard no_grad;
  auto [p, y] = prepare("average_precision", probs, targets);
  const int64_t n = p.size(0), c = p.size(1);
  const Device d = p.device();
  Tensor terms = empty({n, c}, TensorOptions(kFloat64).device(d));
  CUDL_ON_DEVICE(d, average_precision_terms, p.dtype(), n, c, p.data_ptr(), y.data_ptr(),
                 terms.data<double>());
  const std::vector<double> sums = sum(terms, {0}).to_vector<double>();
  Tensor y64 = y.to(kFloat64);
  const std::vector<double> positives =
      sum(gt(y64, full({}, 0.5, TensorOptions(kFloat64).device(d))), {0}).to_vector<double>();
  std::vector<double> ap(c);
  for (int64_t j = 0; j < c; ++j) ap[j] = positives[j] > 0 ? sums[j] / positives[j] : 0.0;
  return ap;
}

double mean_average_precision(const std::vector<double>& ap) {
  CUDL_CHECK(!ap.empty(), "mean_average_precision: no classes");
  double s = 0;
  for (double v : ap) s += v;
  return s / static_cast<double>(ap.size());
}

// ---- MetricsAccumulator ----

MetricsAccumulator::MetricsAccumulator(int64_t num_classes, Device device, DType dtype,
                                       int64_t initial_capacity)
    : c_(num_classes), device_(device), dtype_(dtype) {
  CUDL_CHECK(num_classes > 0, "MetricsAccumulator: need at least one class, got ", num_classes);
  CUDL_CHECK(dtype == kFloat32 || dtype == kFloat64,
             "MetricsAccumulator: dtype must be float32 or float64, got ",
             toString(dtype));
  reserve(std::max<int64_t>(initial_capacity, 1));
}

void MetricsAccumulator::reserve(int64_t rows) {
  const int64_t cap = capacity();
  if (rows <= cap) return;
  int64_t new_cap = std::max<int64_t>(cap, 1);
  while (new_cap < rows) new_cap *= 2;  // geometric: O(log N) reallocations per epoch
  const TensorOptions opts = TensorOptions(dtype_).device(device_);
  Tensor p = empty({new_cap, c_}, opts), y = empty({new_cap, c_}, opts);
  if (n_ > 0) {  // device-to-device copies of the rows gathered so far
    p.narrow(0, 0, n_).copy_(probs_.narrow(0, 0, n_));
    y.narrow(0, 0, n_).copy_(targets_.narrow(0, 0, n_));
  }
  probs_ = p;
  targets_ = y;
}

void MetricsAccumulator::append(const Tensor& probs, const Tensor& targets) {
  CUDL_CHECK(probs.defined() && targets.defined(), "MetricsAccumulator::append: undefined tensor");
  CUDL_CHECK(probs.dim() == 2 && probs.size(1) == c_, "MetricsAccumulator::append: probabilities ",
             "of shape ", shape_str(probs.shape()), " (expected (B, ", c_, "))");
  CUDL_CHECK(targets.shape() == probs.shape(), "MetricsAccumulator::append: targets of shape ",
             shape_str(targets.shape()), " for probabilities of shape ", shape_str(probs.shape()));
  CUDL_CHECK(probs.device() == device_ && targets.device() == device_,
             "MetricsAccumulator::append: tensors on ", probs.device().str(), " and ",
             targets.device().str(), " but the accumulator is on ", device_.str());
  const int64_t b = probs.size(0);
  if (b == 0) return;
  NoGradGuard no_grad;
  reserve(n_ + b);
  probs_.narrow(0, n_, b).copy_(probs);  // converts dtype on the device if needed
  targets_.narrow(0, n_, b).copy_(targets);
  n_ += b;
}

void MetricsAccumulator::reset() { n_ = 0; }

Tensor MetricsAccumulator::probabilities() const { return probs_.narrow(0, 0, n_); }
Tensor MetricsAccumulator::targets() const { return targets_.narrow(0, 0, n_); }

MetricsReport MetricsAccumulator::compute(double threshold, Metric optimise, int steps) const {
  CUDL_CHECK(n_ > 0, "MetricsAccumulator::compute: no predictions were appended");
  // The sweep and the requested threshold in one pass: merge them into one ascending list.
  std::vector<double> sweep = sweep_thresholds(steps);
  std::vector<double> all = sweep;
  if (std::find(all.begin(), all.end(), threshold) == all.end()) {
    all.insert(std::upper_bound(all.begin(), all.end(), threshold), threshold);
  }
  ThresholdCounts counts = threshold_counts(probabilities(), targets(), all);
  MetricsReport r;
  r.n = n_;
  r.c = c_;
  for (size_t k = 0; k < all.size(); ++k) {
    if (all[k] == threshold) r.at_threshold = counts.metrics(static_cast<int64_t>(k));
    if (std::find(sweep.begin(), sweep.end(), all[k]) != sweep.end())
      r.sweep.push_back(counts.metrics(static_cast<int64_t>(k)));
  }
  r.optimised = optimise;
  r.optimal = optimal_threshold(r.sweep, optimise);
  r.average_precision = average_precision(probabilities(), targets());
  r.mean_average_precision = mean_average_precision(r.average_precision);
  return r;
}

}  // namespace cudl
