// Optimizer: parameter groups, zero_grad, step, and exportable state (PyTorch's torch.optim
// semantics; Flashlight's interface shape).
//
// Parameters are plain tensors (leaves), given in groups; each group has its own learning
// rate, weight decay and momentum (SGD's momentum, Adam's beta1: what fastai calls "mom" and
// what the one-cycle schedule anneals). A field left unset takes the optimiser's default. So a
// caller can, e.g., put BatchNorm parameters and biases (from a model's named parameters) in
// a group with weight_decay 0. All parameters must live on one device and share one floating
// dtype: step() updates all of them in one multi-tensor pass (one CUDA launch).
//
// step() runs under NoGradGuard and updates the parameters that have a gradient; parameters
// whose gradient is undefined are skipped (no decay, no moment update), as in PyTorch.
//
// zero_grad(set_to_none = false) zeroes the gradients in place, as torch 1.13 does by default
// and as fastai v1 (PyTorch 1.0) did: a parameter that took part in one backward keeps being
// stepped even when a later backward does not reach it. set_to_none = true drops the gradient
// tensors instead (torch >= 2.0's default): less memory traffic, and such parameters are then
// skipped.
//
// CUDA graphs (tensor/graph.h): a step() run while the device's stream is captured records its
// update reading the table of per-parameter hyperparameters from a buffer of the graph's own,
// and counts nothing (a capture runs nothing). Before each replay, prepare_replay() advances
// the step counts and uploads that step's table (learning rate, momentum, bias corrections), so
// a replayed step updates exactly as step() would. The first step must run eagerly (it creates
// the state), and gradients must stay where they were at the capture (zero_grad() in place).
//
// State for checkpoints: state_dict() lists named tensors, ready for an HDF5 file:
//   "param_groups.<g>.lr", "param_groups.<g>.weight_decay", "param_groups.<g>.momentum"
//                                 float64 scalars, one set per group
//   "state.<param>.step"          int64 scalar, the number of updates of that parameter
//   "state.<param>.<buffer>"      e.g. exp_avg, exp_avg_sq (Adam), momentum_buffer (SGD), the
//                                 parameter's shape, on the optimiser's device (the live
//                                 tensors, not copies: write them out before the next step)
// <param> is the parameter's name (e.g. "layer1.0.conv1.weight"). A parameter that was never
// updated has no state entries. load_state_dict() copies values in after checking every name
// and shape, and reports all problems at once (unknown names, wrong shapes, a parameter with
// some but not all of its entries, missing group entries).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

#ifdef CUDL_WITH_CUDA
#include <memory>
namespace cudl::cuda {
class TableStage;
}
#endif

namespace cudl {

using NamedTensor = std::pair<std::string, Tensor>;

struct ParamGroup {
  std::vector<Tensor> params;
  // One name per parameter (state names), unique across groups. Empty: "group<g>.<i>".
  std::vector<std::string> names;
  std::optional<double> lr, weight_decay, momentum;  // unset: the optimiser's defaults

  ParamGroup() = default;
  ParamGroup(std::vector<Tensor> p, std::vector<std::string> n = {}) : params(std::move(p)), names(std::move(n)) {}
};

class Optimizer {
 public:
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual void step() = 0;
  void prepare_replay() { update(Pass::kReplay); }
  virtual const char* name() const = 0;
  void zero_grad(bool set_to_none = false);

  size_t num_groups() const { return groups_.size(); }
  const std::vector<Tensor>& params(size_t group) const;
  const std::vector<std::string>& param_names(size_t group) const;
  double lr(size_t group = 0) const;
  double weight_decay(size_t group = 0) const;
  double momentum(size_t group = 0) const;
  void set_lr(double lr);  // every group
  void set_lr(size_t group, double lr);
  void set_weight_decay(size_t group, double wd);
  void set_momentum(double momentum);  // every group (SGD momentum / Adam beta1)
  void set_momentum(size_t group, double momentum);
  Device device() const { return device_; }
  DType dtype() const { return dtype_; }

  std::vector<NamedTensor> state_dict() const;
  void load_state_dict(const std::vector<NamedTensor>& state);

 protected:
  struct Group {
    std::vector<Tensor> params;
    std::vector<std::string> names;
    double lr, weight_decay, momentum;
  };
  struct ParamState {
    int64_t step = 0;              // updates so far; 0 = no state yet
    std::vector<Tensor> buffers;   // one per buffer_names_ entry, once step > 0
  };

  // defaults fill the groups' unset fields; buffer_names name the per-parameter state tensors.
  Optimizer(std::vector<ParamGroup> groups, double default_lr, double default_weight_decay,
            double default_momentum, std::vector<std::string> buffer_names);

  // Calls f(group index, param index, param, grad, state) for each parameter with a gradient,
  // in group order, the gradient made contiguous if needed.
  template <class F>
  void for_each_with_grad(F&& f);

  // One update of every parameter with a gradient: run now (kEager), recorded into a CUDA
  // graph being captured (kCapture), or staged for the next replay of that graph (kReplay).
  enum class Pass { kEager, kCapture, kReplay };
  virtual void update(Pass pass) = 0;
  Pass pass_for_step() const;  // kEager or kCapture, from the device's capture state
  // For each parameter the update handles: whether its step count advances in this pass, after
  // checking it has state when the pass needs it.
  bool counts_step(Pass pass, const ParamState& st) const;
  // Records (capture) or checks (replay) the parameter and gradient addresses of the table.
  void note_addresses(Pass pass, std::vector<const void*> addresses);
  // Hands a filled table of `num_slots` slots (`slot_bytes` each) to the device.
  void hand_over(Pass pass, bool adam, const void* slots, int64_t num_slots, size_t slot_bytes,
                 int64_t total_chunks);

  std::vector<Group> groups_;
  std::vector<std::vector<ParamState>> state_;  // [group][param]
  std::vector<std::string> buffer_names_;
  Device device_;
  DType dtype_ = kFloat32;
  bool captured_ = false;  // a step() ran under capture
  std::vector<const void*> captured_addresses_;
#ifdef CUDL_WITH_CUDA
  std::shared_ptr<cuda::TableStage> table_stage_;  // created at the first CUDA step
  cuda::TableStage& table_stage();
#endif

 private:
  void check_group(size_t g, const char* what) const;
};

template <class F>
void Optimizer::for_each_with_grad(F&& f) {
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const Tensor& p = groups_[g].params[i];
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      if (!grad.is_contiguous()) grad = grad.contiguous();
      f(g, i, p, grad, state_[g][i]);
    }
  }
}

}  // namespace cudl
