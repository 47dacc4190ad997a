#include "optim/sgd.h"

#include "optim/kernels.h"
#include "optim/optim_math.h"
#include "tensor/ops/kernels.h"
#include "tensor/autograd.h"
#include "tensor/profiler.h"

namespace cudl {

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& options)
    : Optimizer(std::move(groups), options.lr, options.weight_decay, options.momentum,
                {"momentum_buffer"}),
      options_(options) {
  CUDL_CHECK(options.lr >= 0, "SGD: negative learning rate ", options.lr);
  CUDL_CHECK(options.dampening >= 0 && options.dampening <= 1, "SGD: dampening ",
             options.dampening, " outside [0, 1]");
  CUDL_CHECK(!options.nesterov || (options.momentum > 0 && options.dampening == 0),
             "SGD: Nesterov momentum needs momentum > 0 and dampening 0 (got momentum ",
             options.momentum, ", dampening ", options.dampening, ")");
}

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : SGD(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}

void SGD::step() {
  ProfileRange range("SGD.step");
  update(pass_for_step());
}

void SGD::update(Pass pass) {
  NoGradGuard no_grad;
  CUDL_DISPATCH_FLOATING(dtype_, "SGD step", [&] {
    using T = scalar_t;
    std::vector<optim::SgdSlot<T>> slots;
    std::vector<Tensor> keep;  // contiguous copies of gradients live until the update ran
    std::vector<const void*> addresses;
    int64_t chunks = 0;
    for_each_with_grad([&](size_t g, size_t, const Tensor& p, const Tensor& grad, ParamState& st) {
      const bool first = st.step == 0;
      if (first && pass == Pass::kEager) st.buffers = {zeros_like(p)};
      if (counts_step(pass, st)) st.step += 1;
      if (p.numel() == 0) return;
      const Group& grp = groups_[g];
      optim::SgdHyper<T> h;
      h.lr = static_cast<T>(grp.lr);
      h.weight_decay = static_cast<T>(grp.weight_decay);
      h.momentum = static_cast<T>(grp.momentum);
      h.one_minus_dampening = static_cast<T>(1.0 - options_.dampening);
      h.use_momentum = grp.momentum != 0.0;
      h.nesterov = options_.nesterov;
      h.first_step = first;
      keep.push_back(grad);
      addresses.insert(addresses.end(), {p.data_ptr(), grad.data_ptr(), st.buffers[0].data_ptr()});
      slots.push_back({p.data<T>(), grad.data<T>(), st.buffers[0].data<T>(), p.numel(), chunks, h});
      chunks += optim::chunks_of(p.numel());
    });
    note_addresses(pass, std::move(addresses));
    hand_over(pass, /*adam=*/false, slots.data(), static_cast<int64_t>(slots.size()),
              sizeof(optim::SgdSlot<T>), chunks);
  });
}

}  // namespace cudl
