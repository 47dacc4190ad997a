// Module: the base of every layer and model (PyTorch's nn.Module / Flashlight's Module).
//
// A module owns named parameters (trainable leaf tensors), named buffers (state that is saved
// but not trained, e.g. BatchNorm's running statistics) and named child modules, each kept in
// registration order. Modules are held by std::shared_ptr; children are registered with
// register_module(), which also gives every module in the subtree its dotted name inside the
// model ("layer1.0.conv1"), used by named_parameters() and by every error a layer raises:
//   layer1.0.conv1 (Conv2d(64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1),
//   bias=False)): expected input (N, 64, H, W), got (2, 32, 56, 56)
//
// Decisions (where PyTorch leaves a choice):
// - Parameters and buffers are Tensor handles; the layer's member (e.g. Conv2d::weight) and
//   the registry entry are the same TensorImpl, so an optimiser holding parameters() sees
//   every later change.
// - to(device) / to(dtype) keep each parameter's identity: the TensorImpl stays, its data is
//   replaced by the moved copy (PyTorch's `param.data = param.data.to(...)`), and an existing
//   gradient is moved too. Parameter lists taken before the move remain valid.
// - state_dict() lists, module by module in registration order (pre-order), the module's
//   parameters then its buffers, with dotted names, exactly as PyTorch orders them. The tensors
//   are detached views of the live data (no copy).
// - load_state_dict() copies values in place (any device/dtype to the module's) and checks
//   every name and shape first; all problems (missing, unexpected, wrong shape) are reported
//   in one error and nothing is modified when there is any.
// - zero_grad() drops the gradients (set_to_none, PyTorch 2's default): the next backward
//   writes fresh ones without a zero-fill.
// - freeze(prefix)/unfreeze(prefix) switch requires_grad of the parameters whose name is the
//   prefix or starts with "prefix."; "" means all. A prefix matching nothing is an error.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace cudl {

// Ordered (name, tensor) pairs with lookup by name.
class StateDict {
 public:
  using Item = std::pair<std::string, Tensor>;
  void insert(const std::string& name, const Tensor& t);  // throws on a duplicate name
  const Tensor* find(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  const Tensor& at(const std::string& name) const;  // throws naming the missing key
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  std::vector<Item>::const_iterator begin() const { return items_.begin(); }
  std::vector<Item>::const_iterator end() const { return items_.end(); }
  const std::vector<Item>& items() const { return items_; }
  std::vector<std::string> keys() const;

 private:
  std::vector<Item> items_;
};

// What a non-strict load_state_dict() skipped.
struct LoadResult {
  std::vector<std::string> missing_keys;     // in the module, not in the dict
  std::vector<std::string> unexpected_keys;  // in the dict, not in the module
};

class Module : public std::enable_shared_from_this<Module> {
 public:
  explicit Module(std::string type_name);
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The computation. Layers check their input and raise errors naming themselves (where()).
  virtual Tensor forward(const Tensor& x) = 0;
  // forward() plus the forward hook, when one is installed (ForwardHookGuard). Modules call
  // their children through this, so a hook sees every module of a model in execution order.
  Tensor operator()(const Tensor& x);

  // ---- identity ----
  const std::string& type_name() const { return type_name_; }
  // Dotted name inside the model ("layer1.0.conv1"); empty for the root.
  const std::string& name() const { return name_; }
  // "layer1.0.conv1 (Conv2d(...))", or just "Conv2d(...)" for a module outside any model.
  std::string where() const;
  // One line: type_name(extra_repr()).
  std::string repr() const;
  // The arguments shown in repr(), PyTorch's extra_repr(); empty by default.
  virtual std::string extra_repr() const { return ""; }
  // Nested, PyTorch-like printout of the module and its children.
  std::string to_string() const;

  // ---- registration (call from constructors) ----
  // Registers t as a parameter (a leaf; requires_grad is switched on) and returns it.
  Tensor& register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  Tensor& register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }

  // ---- traversal (registration order, pre-order) ----
  std::vector<Tensor> parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  std::vector<std::shared_ptr<Module>> children() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  // This module (name "") and every descendant with its name relative to this module. The
  // module must be owned by a std::shared_ptr (as every module in a model is).
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules();
  // Calls f on this module and every descendant, pre-order.
  void apply(const std::function<void(Module&)>& f);

  // ---- state ----
  StateDict state_dict() const;
  // strict: every key must match both ways. Shapes must always match. Throws one error listing
  // every problem; the module is unchanged when it throws.
  LoadResult load_state_dict(const StateDict& dict, bool strict = true);

  // Moves / converts every parameter and buffer in place (identity kept, see above). to(dtype)
  // converts floating tensors only (num_batches_tracked stays int64).
  Module& to(Device device);
  Module& to(DType dtype);
  // Device of the first parameter or buffer (cpu for a module without any).
  Device device() const;

  // ---- mode and gradients ----
  Module& train(bool on = true);
  Module& eval() { return train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  // Returns how many parameters were switched; throws when the prefix matches none.
  int freeze(const std::string& prefix = "");
  int unfreeze(const std::string& prefix = "");

 protected:
  // Throws cudl::Error "<where()>: <message>".
  template <class... Args>
  [[noreturn]] void fail(const char* file, int line, const Args&... args) const {
    throw Error(str(where(), ": ", args...), file, line);
  }
  // Input checks shared by the layers: rank, channel count (dim 1), dtype and device against
  // the layer's parameters. `expected` is the shape written for people, e.g. "(N, 64, H, W)".
  void check_input(const Tensor& x, std::vector<int64_t> ranks, int64_t channels,
                   const std::string& expected) const;
  // The device and dtype part of check_input (for layers with their own shape rule).
  void check_placement(const Tensor& x, const std::string& expected) const;
  // Runs an op; a cudl::Error it throws is rethrown with where() in front, so errors found
  // deeper (e.g. a too small image for the kernel) still name the layer. A DeviceError stays
  // one (with its out_of_memory()), so the programs still advise on GPU failures.
  template <class F>
  Tensor run_op(F&& f) const {
    try {
      return f();
    } catch (const DeviceError& e) {
      throw DeviceError(str(where(), ": ", e.message()), __FILE__, __LINE__, e.out_of_memory());
    } catch (const Error& e) {
      throw Error(str(where(), ": ", e.message()), __FILE__, __LINE__);
    }
  }

 private:
  struct Entry {
    std::string name;
    Tensor tensor;
  };
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void set_name(const std::string& name);
  void check_new_name(const std::string& name, const char* what) const;
  void collect_state(const std::string& prefix, StateDict& out) const;
  void collect_named(const std::string& prefix, bool params, bool recurse,
                     std::vector<std::pair<std::string, Tensor>>& out) const;
  int set_requires_grad_by_prefix(const std::string& prefix, bool on, const char* what);

  std::string type_name_;
  std::string name_;
  bool training_ = true;
  std::vector<Entry> params_;
  std::vector<Entry> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// Observes every Module::operator() call on this thread while the guard lives (one at a time):
// used by models::summary() to record output shapes in execution order.
using ForwardHook = std::function<void(const Module& m, const Tensor& input, const Tensor& output)>;
class ForwardHookGuard {
 public:
  explicit ForwardHookGuard(ForwardHook hook);
  ~ForwardHookGuard();
  ForwardHookGuard(const ForwardHookGuard&) = delete;
  ForwardHookGuard& operator=(const ForwardHookGuard&) = delete;

 private:
  ForwardHook* previous_;
  ForwardHook hook_;
};

// Whether a ForwardHookGuard is installed on this thread (layers that fuse several modules'
// work into one op skip the fusion then, so that every module is still seen).
bool forward_hooks_active();

// Throws "<module.where()>: ..." with this file and line.
#define CUDL_MODULE_CHECK(cond, ...)                          \
  do {                                                        \
    if (!(cond)) this->fail(__FILE__, __LINE__, __VA_ARGS__); \
  } while (0)

}  // namespace cudl
