#include "optim/schedule.h"

#include <algorithm>
#include <cmath>

namespace cudl {

void Schedule::apply(Optimizer& opt, int64_t iteration) const {
  CUDL_CHECK(iteration >= 0, "schedule: negative iteration ", iteration);
  opt.set_lr(lr(iteration));
  if (auto m = momentum(iteration)) opt.set_momentum(*m);
}

ConstantSchedule::ConstantSchedule(double lr) : lr_(lr) {
  CUDL_CHECK(lr >= 0, "ConstantSchedule: negative learning rate ", lr);
}

double cos_anneal(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(M_PI * pct) + 1.0);
}

OneCycleSchedule::OneCycleSchedule(double lr_max, int64_t total_iterations,
                                   const OneCycleOptions& options)
    : lr_max_(lr_max), n_(total_iterations), o_(options) {
  CUDL_CHECK(lr_max > 0, "OneCycleSchedule: lr_max must be positive, got ", lr_max);
  CUDL_CHECK(total_iterations >= 1, "OneCycleSchedule: need at least one iteration, got ",
             total_iterations);
  CUDL_CHECK(o_.pct_start >= 0 && o_.pct_start <= 1, "OneCycleSchedule: pct_start ", o_.pct_start,
             " outside [0, 1]");
  CUDL_CHECK(o_.div_factor > 0, "OneCycleSchedule: div_factor must be positive, got ", o_.div_factor);
  if (o_.final_div == 0.0) o_.final_div = o_.div_factor * 1e4;
  CUDL_CHECK(o_.final_div > 0, "OneCycleSchedule: final_div must be positive, got ", o_.final_div);
  a1_ = static_cast<int64_t>(std::floor(static_cast<double>(n_) * o_.pct_start));
}

std::pair<int, double> OneCycleSchedule::phase(int64_t i) const {
  CUDL_CHECK(i >= 0, "OneCycleSchedule: negative iteration ", i);
  const int64_t A1 = std::max<int64_t>(a1_, 1), A2 = std::max<int64_t>(n_ - a1_, 1);
  if (i <= A1) return {0, static_cast<double>(i) / static_cast<double>(A1)};
  return {1, std::min(1.0, static_cast<double>(i - A1) / static_cast<double>(A2))};
}

double OneCycleSchedule::lr(int64_t iteration) const {
  auto [ph, x] = phase(iteration);
  return ph == 0 ? cos_anneal(lr_max_ / o_.div_factor, lr_max_, x)
                 : cos_anneal(lr_max_, lr_max_ / o_.final_div, x);
}

std::optional<double> OneCycleSchedule::momentum(int64_t iteration) const {
  if (!o_.schedule_momentum) return std::nullopt;
  auto [ph, x] = phase(iteration);
  return ph == 0 ? cos_anneal(o_.moms.first, o_.moms.second, x)
                 : cos_anneal(o_.moms.second, o_.moms.first, x);
}

}  // namespace cudl
