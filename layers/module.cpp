#include "layers/module.h"

#include <algorithm>
#include <optional>
#include <sstream>

#include "tensor/autocast.h"
#include "tensor/autograd.h"
#include "tensor/profiler.h"

namespace cudl {

// ---------------------------------------------------------------------------------------------
// StateDict

void StateDict::insert(const std::string& name, const Tensor& t) {
  CUDL_CHECK(!contains(name), "state dict: duplicate key '", name, "'");
  items_.emplace_back(name, t);
}

const Tensor* StateDict::find(const std::string& name) const {
  for (const Item& it : items_)
    if (it.first == name) return &it.second;
  return nullptr;
}

const Tensor& StateDict::at(const std::string& name) const {
  const Tensor* t = find(name);
  CUDL_CHECK(t, "state dict has no key '", name, "'");
  return *t;
}

std::vector<std::string> StateDict::keys() const {
  std::vector<std::string> k;
  for (const Item& it : items_) k.push_back(it.first);
  return k;
}

// ---------------------------------------------------------------------------------------------
// identity and printing

namespace {

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// PyTorch's _addindent: every line after the first gets `spaces` more indentation.
std::string indent_tail(const std::string& s, int spaces) {
  std::string out;
  for (char ch : s) {
    out += ch;
    if (ch == '\n') out += std::string(spaces, ' ');
  }
  return out;
}

bool matches_prefix(const std::string& name, const std::string& prefix) {
  return prefix.empty() || name == prefix ||
         (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
          name[prefix.size()] == '.');
}

// Gives `t` (same TensorImpl) the data of `src`; its gradient follows through `move_grad`.
template <class F>
void replace_data(Tensor& t, const Tensor& src, F&& move_grad) {
  TensorImpl* impl = t.impl();
  impl->storage = src.storage();
  impl->shape = src.shape();
  impl->strides = src.strides();
  impl->offset = src.offset();
  impl->dtype = src.dtype();
  if (impl->autograd && impl->autograd->grad.defined())
    impl->autograd->grad = move_grad(impl->autograd->grad);
}

}  // namespace

Module::Module(std::string type_name) : type_name_(std::move(type_name)) {}

std::string Module::repr() const {
  return type_name_ + "(" + extra_repr() + ")";
}

std::string Module::where() const {
  return name_.empty() ? repr() : name_ + " (" + repr() + ")";
}

std::string Module::to_string() const {
  if (children_.empty()) return repr();
  std::ostringstream os;
  os << type_name_ << "(";
  const std::string extra = extra_repr();
  if (!extra.empty()) os << "\n  " << indent_tail(extra, 2);
  for (const auto& [child_name, child] : children_)
    os << "\n  (" << child_name << "): " << indent_tail(child->to_string(), 2);
  os << "\n)";
  return os.str();
}

// ---------------------------------------------------------------------------------------------
// registration

void Module::check_new_name(const std::string& name, const char* what) const {
  CUDL_CHECK(!name.empty() && name.find('.') == std::string::npos, where(), ": ", what, " name '",
             name, "' must be non-empty and contain no '.'");
  auto taken = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.name == name; });
  };
  bool child_taken = std::any_of(children_.begin(), children_.end(),
                                 [&](const auto& c) { return c.first == name; });
  CUDL_CHECK(!taken(params_) && !taken(buffers_) && !child_taken, where(), ": ", what, " name '",
             name, "' is already in use");
}

Tensor& Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_new_name(name, "parameter");
  CUDL_CHECK(t.defined(), where(), ": parameter '", name, "' is undefined");
  CUDL_CHECK(t.is_leaf(), where(), ": parameter '", name,
             "' must be a leaf tensor (detach() it first)");
  t.set_requires_grad(requires_grad);
  params_.push_back({name, t});
  return params_.back().tensor;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name, "buffer");
  CUDL_CHECK(t.defined(), where(), ": buffer '", name, "' is undefined");
  buffers_.push_back({name, t.detach()});
  return buffers_.back().tensor;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_new_name(name, "module");
  CUDL_CHECK(m != nullptr, where(), ": module '", name, "' is null");
  CUDL_CHECK(m.get() != this, where(), ": a module cannot be its own child");
  children_.emplace_back(name, m);
  m->set_name(join(name_, name));
}

void Module::set_name(const std::string& name) {
  name_ = name;
  for (auto& [child_name, child] : children_) child->set_name(join(name_, child_name));
}

// ---------------------------------------------------------------------------------------------
// traversal

void Module::collect_named(const std::string& prefix, bool params, bool recurse,
                           std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const Entry& e : params ? params_ : buffers_)
    out.emplace_back(join(prefix, e.name), e.tensor);
  if (!recurse) return;
  for (const auto& [child_name, child] : children_)
    child->collect_named(join(prefix, child_name), params, true, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect_named("", true, recurse, out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect_named("", false, recurse, out);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_buffers(recurse)) out.push_back(t);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& c : children_) out.push_back(c.second);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const {
  return children_;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  std::function<void(const std::string&, const std::shared_ptr<Module>&)> visit =
      [&](const std::string& prefix, const std::shared_ptr<Module>& m) {
        out.emplace_back(prefix, m);
        for (const auto& [child_name, child] : m->children_) visit(join(prefix, child_name), child);
      };
  std::shared_ptr<Module> self = weak_from_this().lock();
  CUDL_CHECK(self, where(),
             ": named_modules() needs the module to be held by a std::shared_ptr "
             "(create it with std::make_shared)");
  visit("", self);
  return out;
}

void Module::apply(const std::function<void(Module&)>& f) {
  f(*this);
  for (auto& c : children_) c.second->apply(f);
}

// ---------------------------------------------------------------------------------------------
// state

void Module::collect_state(const std::string& prefix, StateDict& out) const {
  for (const Entry& e : params_) out.insert(join(prefix, e.name), e.tensor.detach());
  for (const Entry& e : buffers_) out.insert(join(prefix, e.name), e.tensor.detach());
  for (const auto& [child_name, child] : children_)
    child->collect_state(join(prefix, child_name), out);
}

StateDict Module::state_dict() const {
  StateDict d;
  collect_state("", d);
  return d;
}

LoadResult Module::load_state_dict(const StateDict& dict, bool strict) {
  const StateDict mine = state_dict();
  LoadResult result;
  std::vector<std::string> problems;
  for (const auto& [key, t] : mine) {
    const Tensor* src = dict.find(key);
    if (!src) {
      result.missing_keys.push_back(key);
      if (strict)
        problems.push_back("missing key '" + key + "' (expected shape " + shape_str(t.shape()) +
                           ")");
    } else if (!src->defined()) {
      problems.push_back("key '" + key + "' holds an undefined tensor");
    } else if (src->shape() != t.shape()) {
      problems.push_back("key '" + key + "': expected shape " + shape_str(t.shape()) + ", got " +
                         shape_str(src->shape()));
    }
  }
  for (const auto& [key, t] : dict) {
    if (!mine.contains(key)) {
      result.unexpected_keys.push_back(key);
      if (strict)
        problems.push_back("unexpected key '" + key + "' (shape " + shape_str(t.shape()) + ")");
    }
  }
  if (!problems.empty()) {
    std::string msg =
        str("load_state_dict into ", name_.empty() ? type_name_ : where(), ": ", problems.size(),
            problems.size() == 1 ? " problem" : " problems", " (nothing was loaded):");
    for (const std::string& p : problems) msg += "\n  " + p;
    CUDL_THROW(msg);
  }
  NoGradGuard ng;
  for (const auto& [key, t] : mine) {
    const Tensor* src = dict.find(key);
    if (src) {
      Tensor dst = t;
      dst.copy_(*src);
    }
  }
  return result;
}

Module& Module::to(Device device) {
  NoGradGuard ng;
  auto move = [&](Tensor& t) {
    if (t.device() == device) return;
    Tensor moved = t.detach().to(device);
    replace_data(t, moved, [&](const Tensor& g) { return g.to(device); });
  };
  apply([&](Module& m) {
    for (Entry& e : m.params_) move(e.tensor);
    for (Entry& e : m.buffers_) move(e.tensor);
  });
  return *this;
}

Module& Module::to(DType dtype) {
  CUDL_CHECK(isFloating(dtype), where(), ": to(", toString(dtype),
             "): modules convert to floating dtypes only");
  NoGradGuard ng;
  auto convert = [&](Tensor& t) {
    if (!isFloating(t.dtype()) || t.dtype() == dtype) return;
    Tensor converted = t.detach().to(dtype);
    replace_data(t, converted, [&](const Tensor& g) { return g.to(dtype); });
  };
  apply([&](Module& m) {
    for (Entry& e : m.params_) convert(e.tensor);
    for (Entry& e : m.buffers_) convert(e.tensor);
  });
  return *this;
}

Device Module::device() const {
  if (!params_.empty()) return params_.front().tensor.device();
  if (!buffers_.empty()) return buffers_.front().tensor.device();
  for (const auto& c : children_) {
    if (!c.second->parameters().empty() || !c.second->buffers().empty()) return c.second->device();
  }
  return Device::cpu();
}

// ---------------------------------------------------------------------------------------------
// mode and gradients

Module& Module::train(bool on) {
  apply([on](Module& m) { m.training_ = on; });
  return *this;
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.set_grad(Tensor());
}

int Module::set_requires_grad_by_prefix(const std::string& prefix, bool on, const char* what) {
  int n = 0;
  for (auto& [name, p] : named_parameters()) {
    if (!matches_prefix(name, prefix)) continue;
    p.set_requires_grad(on);
    ++n;
  }
  CUDL_CHECK(n > 0 || named_parameters().empty(), what, "('", prefix, "') on ",
             name_.empty() ? type_name_ : where(), ": no parameter is named that or starts with '",
             prefix, ".'");
  return n;
}

int Module::freeze(const std::string& prefix) {
  return set_requires_grad_by_prefix(prefix, false, "freeze");
}
int Module::unfreeze(const std::string& prefix) {
  return set_requires_grad_by_prefix(prefix, true, "unfreeze");
}

// ---------------------------------------------------------------------------------------------
// input checks

void Module::check_input(const Tensor& x, std::vector<int64_t> ranks, int64_t channels,
                         const std::string& expected) const {
  CUDL_MODULE_CHECK(x.defined(), "expected input ", expected, ", got an undefined tensor");
  const bool rank_ok = std::find(ranks.begin(), ranks.end(), x.dim()) != ranks.end();
  CUDL_MODULE_CHECK(rank_ok && (channels < 0 || x.size(1) == channels), "expected input ", expected,
                    ", got ", shape_str(x.shape()));
  check_placement(x, expected);
}

void Module::check_placement(const Tensor& x, const std::string& expected) const {
  const Tensor* ref = nullptr;
  if (!params_.empty())
    ref = &params_.front().tensor;
  else if (!buffers_.empty())
    ref = &buffers_.front().tensor;
  if (ref) {
    CUDL_MODULE_CHECK(x.device() == ref->device(), "expected input ", expected, " on ",
                      ref->device().str(), ", got ", shape_str(x.shape()), " on ", x.device().str(),
                      " (move the input, or the model with to(device))");
    // Under autocast a float32 module takes the bfloat16 activations of the layers before it.
    const bool mixed = autocast_enabled() && x.dtype() == autocast_dtype() &&
                       ref->dtype() == compute_dtype(x.dtype());
    CUDL_MODULE_CHECK(x.dtype() == ref->dtype() || mixed, "expected ", toString(ref->dtype()),
                      " input ", expected, ", got ", toString(x.dtype()), " ",
                      shape_str(x.shape()));
  }
  if (!isFloating(x.dtype())) {
    fail(__FILE__, __LINE__, "expected a floating input ", expected, ", got ", toString(x.dtype()),
         " ", shape_str(x.shape()));
  }
}

namespace {
thread_local ForwardHook* g_forward_hook = nullptr;
}  // namespace

Tensor Module::operator()(const Tensor& x) {
  std::optional<ProfileRange> range;  // leaf modules only: ranges never nest
  if (children_.empty() && profiler_running()) range.emplace(type_name_ + ".forward");
  Tensor out = forward(x);
  range.reset();
  if (g_forward_hook) (*g_forward_hook)(*this, x, out);
  return out;
}

ForwardHookGuard::ForwardHookGuard(ForwardHook hook) : previous_(g_forward_hook), hook_(std::move(hook)) {
  g_forward_hook = &hook_;
}

ForwardHookGuard::~ForwardHookGuard() { g_forward_hook = previous_; }

bool forward_hooks_active() { return g_forward_hook != nullptr; }

}  // namespace cudl
