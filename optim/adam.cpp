#include "optim/adam.h"

#include <cmath>

#include "optim/kernels.h"
#include "optim/optim_math.h"
#include "tensor/ops/kernels.h"
#include "tensor/autograd.h"
#include "tensor/profiler.h"


namespace cudl {

namespace {
std::vector<ParamGroup> one_group(std::vector<Tensor> params) {
  return {ParamGroup(std::move(params))};
}

void check_options(const char* who, const AdamOptions& o) {
  CUDL_CHECK(o.lr >= 0, who, ": negative learning rate ", o.lr);
  CUDL_CHECK(o.beta1 >= 0 && o.beta1 < 1, who, ": beta1 ", o.beta1, " outside [0, 1)");
  CUDL_CHECK(o.beta2 >= 0 && o.beta2 < 1, who, ": beta2 ", o.beta2, " outside [0, 1)");
  CUDL_CHECK(o.eps >= 0, who, ": negative eps ", o.eps);
  CUDL_CHECK(o.weight_decay >= 0, who, ": negative weight decay ", o.weight_decay);
}
}  // namespace

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& options, bool decoupled)
    : Optimizer(std::move(groups), options.lr, options.weight_decay, options.beta1,
                {"exp_avg", "exp_avg_sq"}),
      options_(options),
      decoupled_(decoupled) {
  check_options(decoupled ? "AdamW" : "Adam", options);
}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& options)
    : Adam(std::move(groups), options, false) {}
Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Adam(one_group(std::move(params)), options, false) {}
AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options)
    : Adam(std::move(groups), options, true) {}
AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& options)
    : Adam(one_group(std::move(params)), options, true) {}

void Adam::step() {
  ProfileRange range(decoupled_ ? "AdamW.step" : "Adam.step");
  update(pass_for_step());
}

void Adam::update(Pass pass) {
  NoGradGuard no_grad;
  CUDL_DISPATCH_FLOATING(dtype_, "Adam step", [&] {
    using T = scalar_t;
    std::vector<optim::AdamSlot<T>> slots;
    std::vector<Tensor> keep;  // contiguous copies of gradients live until the update ran
    std::vector<const void*> addresses;
    int64_t chunks = 0;
    for_each_with_grad([&](size_t g, size_t, const Tensor& p, const Tensor& grad, ParamState& st) {
      if (st.step == 0 && pass == Pass::kEager) st.buffers = {zeros_like(p), zeros_like(p)};
      if (counts_step(pass, st)) st.step += 1;
      if (p.numel() == 0) return;
      const Group& grp = groups_[g];
      const double lr = grp.lr, wd = grp.weight_decay, beta1 = grp.momentum, beta2 = options_.beta2;
      // Host-side scalars in double, rounded once to T (as torch's Python-float arguments).
      const double t = static_cast<double>(st.step);
      const double bc1 = 1.0 - std::pow(beta1, t), bc2 = 1.0 - std::pow(beta2, t);
      optim::AdamHyper<T> h;
      h.decay = static_cast<T>(decoupled_ ? 1.0 - lr * wd : 1.0);
      h.l2 = static_cast<T>(decoupled_ ? 0.0 : wd);
      h.beta1 = static_cast<T>(beta1);
      h.one_minus_beta1 = static_cast<T>(1.0 - beta1);
      h.beta2 = static_cast<T>(beta2);
      h.one_minus_beta2 = static_cast<T>(1.0 - beta2);
      h.step_size = static_cast<T>(lr / bc1);
      h.bc2_sqrt = static_cast<T>(std::sqrt(bc2));
      h.eps = static_cast<T>(options_.eps);
      keep.push_back(grad);
      addresses.insert(addresses.end(), {p.data_ptr(), grad.data_ptr(), st.buffers[0].data_ptr(),
                                         st.buffers[1].data_ptr()});
      slots.push_back({p.data<T>(), grad.data<T>(), st.buffers[0].data<T>(),
                       st.buffers[1].data<T>(), p.numel(), chunks, h});
      chunks += optim::chunks_of(p.numel());
    });
    note_addresses(pass, std::move(addresses));
    hand_over(pass, /*adam=*/true, slots.data(), static_cast<int64_t>(slots.size()),
              sizeof(optim::AdamSlot<T>), chunks);
  });
}

}  // namespace cudl
