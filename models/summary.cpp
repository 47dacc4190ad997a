#include "models/summary.h"

#include <cstdio>
#include <sstream>

#include "tensor/autograd.h"

namespace cudl::models {

namespace {
std::string thousands(int64_t v) {
  std::string s = std::to_string(v), r;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) r += ',';
    r += s[i];
  }
  return r;
}

std::string shape_list(const Shape& s) {
  std::string r = "[";
  for (size_t i = 1; i < s.size(); ++i) r += (i > 1 ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}
}  // namespace

ModelSummary summarize(Module& model, const Shape& input_shape) {
  ModelSummary out;
  for (const auto& [name, p] : model.named_parameters()) {
    out.total_params += p.numel();
    if (p.requires_grad()) out.trainable_params += p.numel();
  }
  const bool was_training = model.is_training();
  model.eval();
  try {
    NoGradGuard no_grad;
    ForwardHookGuard hook([&](const Module& m, const Tensor&, const Tensor& y) {
      if (!m.children().empty()) return;  // leaves only, as fastai's flatten_model
      SummaryRow row;
      row.name = m.name();
      row.type = m.type_name();
      row.output_shape = y.shape();
      for (const Tensor& p : m.parameters(false)) {
        row.params += p.numel();
        row.trainable = row.trainable || p.requires_grad();
      }
      out.rows.push_back(row);
    });
    model(zeros(input_shape, TensorOptions().device(model.device())));
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  return out;
}

std::string ModelSummary::to_string() const {
  std::ostringstream o;
  char line[256];
  std::snprintf(line, sizeof line, "%-28s %-20s %-20s %-12s %-9s\n", "Layer (name)", "(type)",
                "Output Shape", "Param #", "Trainable");
  o << line << std::string(92, '=') << "\n";
  for (const SummaryRow& r : rows) {
    std::snprintf(line, sizeof line, "%-28s %-20s %-20s %-12s %-9s\n", r.name.c_str(),
                  r.type.c_str(), shape_list(r.output_shape).c_str(), thousands(r.params).c_str(),
                  r.trainable ? "True" : "False");
    o << line;
  }
  o << std::string(92, '_') << "\n";
  o << "Total params: " << thousands(total_params) << "\n";
  o << "Total trainable params: " << thousands(trainable_params) << "\n";
  o << "Total non-trainable params: " << thousands(total_params - trainable_params) << "\n";
  return o.str();
}

}  // namespace cudl::models
