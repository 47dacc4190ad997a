#include "layers/basic.h"

#include "layers/repr.h"
#include "tensor/ops/dropout.h"
#include "tensor/ops/elementwise.h"

namespace cudl {

Tensor ReLU::forward(const Tensor& x) {
  CUDL_MODULE_CHECK(x.defined(), "got an undefined input");
  return run_op([&] { return relu(x); });
}

Dropout::Dropout(double p, Generator* gen) : Module("Dropout"), p_(p), gen_(gen) {
  CUDL_CHECK(p >= 0.0 && p <= 1.0, "Dropout: probability must be in [0, 1], got ", p);
}

std::string Dropout::extra_repr() const {
  return "p=" + repr::py_float(p_) + ", inplace=False";
}

Tensor Dropout::forward(const Tensor& x) {
  CUDL_MODULE_CHECK(x.defined(), "got an undefined input");
  return run_op([&] { return dropout(x, p_, is_training(), gen_); });
}

Flatten::Flatten(int start_dim, int end_dim)
    : Module("Flatten"), start_(start_dim), end_(end_dim) {}

std::string Flatten::extra_repr() const {
  return "start_dim=" + std::to_string(start_) + ", end_dim=" + std::to_string(end_);
}

Tensor Flatten::forward(const Tensor& x) {
  CUDL_MODULE_CHECK(x.defined(), "got an undefined input");
  return run_op([&] { return x.flatten(start_, end_); });
}

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules)
    : Module("Sequential") {
  for (const auto& m : modules) push_back(m);
}

Sequential::Sequential(const std::vector<std::shared_ptr<Module>>& modules) : Module("Sequential") {
  for (const auto& m : modules) push_back(m);
}

Sequential& Sequential::push_back(std::shared_ptr<Module> m) {
  return push_back(std::to_string(modules_.size()), std::move(m));
}

Sequential& Sequential::push_back(const std::string& name, std::shared_ptr<Module> m) {
  register_module(name, m);
  modules_.push_back(std::move(m));
  return *this;
}

const std::shared_ptr<Module>& Sequential::operator[](size_t i) const {
  CUDL_CHECK(i < modules_.size(), where(), ": index ", i, " out of range for ", modules_.size(),
             " modules");
  return modules_[i];
}

std::shared_ptr<Sequential> sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>(modules));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (const auto& m : modules_) h = (*m)(h);
  return h;
}

}  // namespace cudl
