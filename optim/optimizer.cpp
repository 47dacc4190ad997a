#include "optim/optimizer.h"

#include <map>
#include <set>
#include <sstream>

#include "tensor/autograd.h"
#include "optim/kernels.h"
#include "tensor/graph.h"
#include "tensor/ops/kernels.h"

namespace cudl {

Optimizer::Optimizer(std::vector<ParamGroup> groups, double default_lr, double default_weight_decay,
                     double default_momentum, std::vector<std::string> buffer_names)
    : buffer_names_(std::move(buffer_names)) {
  CUDL_CHECK(!groups.empty(), "optimizer: no parameter groups");
  std::set<std::string> seen_names;
  std::set<const TensorImpl*> seen_params;
  bool first = true;
  for (size_t g = 0; g < groups.size(); ++g) {
    ParamGroup& pg = groups[g];
    CUDL_CHECK(pg.names.empty() || pg.names.size() == pg.params.size(), "optimizer: group ", g,
               " has ", pg.params.size(), " parameters but ", pg.names.size(), " names");
    Group grp;
    grp.lr = pg.lr.value_or(default_lr);
    grp.weight_decay = pg.weight_decay.value_or(default_weight_decay);
    grp.momentum = pg.momentum.value_or(default_momentum);
    CUDL_CHECK(grp.lr >= 0, "optimizer: group ", g, " has a negative learning rate ", grp.lr);
    CUDL_CHECK(grp.weight_decay >= 0, "optimizer: group ", g, " has a negative weight decay ",
               grp.weight_decay);
    CUDL_CHECK(grp.momentum >= 0 && grp.momentum < 1, "optimizer: group ", g,
               " has momentum/beta1 ", grp.momentum, " outside [0, 1)");
    for (size_t i = 0; i < pg.params.size(); ++i) {
      const Tensor& p = pg.params[i];
      const std::string name = pg.names.empty() ? str("group", g, ".", i) : pg.names[i];
      CUDL_CHECK(p.defined(), "optimizer: parameter ", name, " is undefined");
      CUDL_CHECK(p.is_leaf(), "optimizer: parameter ", name, " is not a leaf (it has a grad_fn); ",
                 "optimise the tensor the model owns, not a result computed from it");
      CUDL_CHECK(isFloating(p.dtype()), "optimizer: parameter ", name, " is ", toString(p.dtype()),
                 " (float32 or float64 expected)");
      CUDL_CHECK(p.is_contiguous(), "optimizer: parameter ", name, " is not contiguous");
      if (first) {
        device_ = p.device();
        dtype_ = p.dtype();
        first = false;
      }
      CUDL_CHECK(p.device() == device_ && p.dtype() == dtype_, "optimizer: parameter ", name, " is ",
                 p.info(), " but the first parameter is ", toString(dtype_), " on ", device_.str(),
                 " (all parameters must share one device and dtype)");
      CUDL_CHECK(seen_names.insert(name).second, "optimizer: parameter name '", name,
                 "' appears twice");
      CUDL_CHECK(seen_params.insert(p.impl()).second, "optimizer: parameter ", name,
                 " appears in more than one place (each tensor may be optimised once)");
      grp.params.push_back(p);
      grp.names.push_back(name);
    }
    state_.emplace_back(grp.params.size());
    groups_.push_back(std::move(grp));
  }
}

Optimizer::~Optimizer() = default;

Optimizer::Pass Optimizer::pass_for_step() const {
  return is_capturing(device_) ? Pass::kCapture : Pass::kEager;
}

bool Optimizer::counts_step(Pass pass, const ParamState& st) const {
  if (pass == Pass::kEager) return true;
  CUDL_CHECK(st.step > 0, name(), ": run one step eagerly before capturing it into a CUDA graph "
             "(the first step creates the optimiser state)");
  CUDL_CHECK(pass == Pass::kCapture || captured_, name(),
             ": prepare_replay() needs a step() captured into a CUDA graph");
  // The capture runs nothing and its table is never read (each replay's is staged): only
  // replays count, so a capture that fails leaves the counts as they were.
  return pass == Pass::kReplay;
}

void Optimizer::note_addresses(Pass pass, std::vector<const void*> addresses) {
  if (pass == Pass::kCapture) {
    captured_ = true;
    captured_addresses_ = std::move(addresses);
  } else if (pass == Pass::kReplay) {
    CUDL_CHECK(addresses == captured_addresses_, name(), ": parameters, gradients or optimiser "
               "state moved since the step was captured (replaying needs zero_grad() in place, "
               "contiguous gradients, the same parameters with gradients and no "
               "load_state_dict() in between)");
  }
}

void Optimizer::hand_over(Pass pass, bool adam, const void* slots, int64_t num_slots,
                          size_t slot_bytes, int64_t total_chunks) {
  if (device_.is_cuda()) {
#ifdef CUDL_WITH_CUDA
    cuda::DeviceGuard guard(device_.index);
    cudaStream_t s = cuda::stream(device_.index);
    if (pass == Pass::kReplay) {
      if (num_slots > 0) cuda::restage_table(s, table_stage(), slots, num_slots * slot_bytes);
    } else if (adam) {
      cuda::adam_multi_tensor(s, table_stage(), dtype_, slots, num_slots, total_chunks);
    } else {
      cuda::sgd_multi_tensor(s, table_stage(), dtype_, slots, num_slots, total_chunks);
    }
#else
    detail::throw_no_cuda(name());
#endif
    return;
  }
  CUDL_CHECK(pass == Pass::kEager, name(), ": CUDA graphs exist only on CUDA devices");
  if (adam) {
    cpu::adam_multi_tensor(dtype_, slots, num_slots, total_chunks);
  } else {
    cpu::sgd_multi_tensor(dtype_, slots, num_slots, total_chunks);
  }
}

void Optimizer::check_group(size_t g, const char* what) const {
  CUDL_CHECK(g < groups_.size(), "optimizer ", what, ": group ", g, " does not exist (",
             groups_.size(), " groups)");
}

const std::vector<Tensor>& Optimizer::params(size_t g) const {
  check_group(g, "params");
  return groups_[g].params;
}
const std::vector<std::string>& Optimizer::param_names(size_t g) const {
  check_group(g, "param_names");
  return groups_[g].names;
}
double Optimizer::lr(size_t g) const {
  check_group(g, "lr");
  return groups_[g].lr;
}
double Optimizer::weight_decay(size_t g) const {
  check_group(g, "weight_decay");
  return groups_[g].weight_decay;
}
double Optimizer::momentum(size_t g) const {
  check_group(g, "momentum");
  return groups_[g].momentum;
}
void Optimizer::set_lr(double lr) {
  for (size_t g = 0; g < groups_.size(); ++g) set_lr(g, lr);
}
void Optimizer::set_lr(size_t g, double lr) {
  check_group(g, "set_lr");
  CUDL_CHECK(lr >= 0, "optimizer set_lr: negative learning rate ", lr);
  groups_[g].lr = lr;
}
void Optimizer::set_weight_decay(size_t g, double wd) {
  check_group(g, "set_weight_decay");
  CUDL_CHECK(wd >= 0, "optimizer set_weight_decay: negative weight decay ", wd);
  groups_[g].weight_decay = wd;
}
void Optimizer::set_momentum(double m) {
  for (size_t g = 0; g < groups_.size(); ++g) set_momentum(g, m);
}
void Optimizer::set_momentum(size_t g, double m) {
  check_group(g, "set_momentum");
  CUDL_CHECK(m >= 0 && m < 1, "optimizer set_momentum: momentum/beta1 ", m, " outside [0, 1)");
  groups_[g].momentum = m;
}

void Optimizer::zero_grad(bool set_to_none) {
  NoGradGuard no_grad;
  for (Group& grp : groups_) {
    for (Tensor& p : grp.params) {
      if (!p.grad().defined()) continue;
      if (set_to_none) {
        p.set_grad(Tensor());
      } else {
        Tensor g = p.grad();
        g.zero_();
      }
    }
  }
}

std::vector<NamedTensor> Optimizer::state_dict() const {
  std::vector<NamedTensor> out;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = str("param_groups.", g, ".");
    out.emplace_back(prefix + "lr", scalar_tensor(groups_[g].lr, kFloat64));
    out.emplace_back(prefix + "weight_decay", scalar_tensor(groups_[g].weight_decay, kFloat64));
    out.emplace_back(prefix + "momentum", scalar_tensor(groups_[g].momentum, kFloat64));
  }
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const ParamState& st = state_[g][i];
      if (st.step == 0) continue;
      const std::string prefix = "state." + groups_[g].names[i] + ".";
      out.emplace_back(prefix + "step", scalar_tensor(static_cast<double>(st.step), kInt64));
      for (size_t b = 0; b < buffer_names_.size(); ++b)
        out.emplace_back(prefix + buffer_names_[b], st.buffers[b].detach());
    }
  }
  return out;
}

void Optimizer::load_state_dict(const std::vector<NamedTensor>& state) {
  std::map<std::string, Tensor> given;
  std::vector<std::string> problems;
  for (const auto& [name, t] : state) {
    if (!given.emplace(name, t).second) problems.push_back("'" + name + "' given twice");
    if (!t.defined()) problems.push_back("'" + name + "' is an undefined tensor");
  }
  auto take = [&](const std::string& name) -> Tensor {
    auto it = given.find(name);
    if (it == given.end()) return Tensor();
    Tensor t = it->second;
    given.erase(it);
    return t;
  };
  auto scalar_of = [&](const std::string& name, const Tensor& t, double& out) {
    if (!t.defined()) {
      problems.push_back("missing '" + name + "'");
    } else if (t.numel() != 1) {
      problems.push_back(str("'", name, "' has shape ", shape_str(t.shape()), ", expected a scalar"));
    } else {
      out = t.item();
    }
  };
  // Read everything into new values first; change nothing unless all of it is valid.
  std::vector<Group> groups = groups_;
  std::vector<std::vector<ParamState>> states = state_;
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::string prefix = str("param_groups.", g, ".");
    scalar_of(prefix + "lr", take(prefix + "lr"), groups[g].lr);
    scalar_of(prefix + "weight_decay", take(prefix + "weight_decay"), groups[g].weight_decay);
    scalar_of(prefix + "momentum", take(prefix + "momentum"), groups[g].momentum);
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    for (size_t i = 0; i < groups[g].params.size(); ++i) {
      const std::string prefix = "state." + groups[g].names[i] + ".";
      const Tensor& p = groups[g].params[i];
      Tensor step = take(prefix + "step");
      std::vector<Tensor> bufs;
      std::vector<std::string> missing;
      if (!step.defined()) missing.push_back("step");
      for (const std::string& b : buffer_names_) {
        bufs.push_back(take(prefix + b));
        if (!bufs.back().defined()) missing.push_back(b);
      }
      ParamState& st = states[g][i];
      if (missing.size() == buffer_names_.size() + 1) {  // no state: never updated
        st = ParamState();
        continue;
      }
      if (!missing.empty()) {
        std::string m;
        for (const std::string& s : missing) m += (m.empty() ? "" : ", ") + s;
        problems.push_back("incomplete state for parameter '" + groups[g].names[i] + "': missing " + m);
        continue;
      }
      double step_value = 0;
      scalar_of(prefix + "step", step, step_value);
      if (step_value < 1 || step_value != static_cast<double>(static_cast<int64_t>(step_value)))
        problems.push_back(str("'", prefix, "step' is ", step_value, ", expected a positive integer"));
      bool shapes_ok = true;
      for (size_t b = 0; b < bufs.size(); ++b) {
        if (bufs[b].shape() != p.shape()) {
          problems.push_back(str("'", prefix, buffer_names_[b], "' has shape ", shape_str(bufs[b].shape()),
                                 " but the parameter has shape ", shape_str(p.shape())));
          shapes_ok = false;
        }
      }
      if (!shapes_ok) continue;
      ParamState fresh;
      fresh.step = static_cast<int64_t>(step_value);
      for (const Tensor& b : bufs) {
        Tensor mine = empty(p.shape(), TensorOptions(dtype_).device(device_));
        mine.copy_(b);  // converts device and dtype
        fresh.buffers.push_back(mine);
      }
      st = std::move(fresh);
    }
  }
  for (const auto& [name, t] : given) problems.push_back("unknown entry '" + name + "'");
  if (!problems.empty()) {
    std::ostringstream os;
    os << name() << " load_state_dict: " << problems.size() << " problem(s):";
    for (const std::string& p : problems) os << "\n  " << p;
    CUDL_THROW(os.str());
  }
  groups_ = std::move(groups);
  state_ = std::move(states);
}

#ifdef CUDL_WITH_CUDA
cuda::TableStage& Optimizer::table_stage() {
  if (!table_stage_) table_stage_ = cuda::make_table_stage(device_.index);
  return *table_stage_;
}
#endif

}  // namespace cudl
