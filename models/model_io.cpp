#include "models/model_io.h"

namespace cudl::models {

NamedTensors named_state(const Module& model) {
  NamedTensors out;
  for (const auto& [name, t] : model.state_dict()) out.emplace_back(name, t);
  return out;
}

std::vector<TensorSpec> spec_of(const Module& model) {
  std::vector<TensorSpec> out;
  for (const auto& [name, t] : model.state_dict()) out.push_back({name, t.shape(), t.dtype()});
  return out;
}

void load_named(Module& model, const NamedTensors& tensors, bool strict) {
  StateDict dict;
  for (const auto& [name, t] : tensors) dict.insert(name, t);
  model.load_state_dict(dict, strict);
}

void load_weights_into(Module& model, const WeightsFile& file, const std::string& path) {
  load_named(model, match_weights_file(file, path, spec_of(model)));
}

void load_backbone_into(Module& notebook_model, const WeightsFile& file, const std::string& path) {
  load_named(notebook_model,
             match_weights_file(file, path, spec_of(notebook_model), torchvision_backbone_to_body()),
             /*strict=*/false);
}

void load_body_into(Module& notebook_model, const WeightsFile& file, const std::string& path) {
  WeightsMapping m;
  m.ignore = {"head.*"};
  m.required_prefix = "body.";
  load_named(notebook_model, match_weights_file(file, path, spec_of(notebook_model), m),
             /*strict=*/false);
}

void load_weights_into(Module& model, const std::string& path) {
  load_weights_into(model, load_weights(path), path);
}

void load_backbone_into(Module& notebook_model, const std::string& path) {
  load_backbone_into(notebook_model, load_weights(path), path);
}

void load_body_into(Module& notebook_model, const std::string& path) {
  load_body_into(notebook_model, load_weights(path), path);
}

}  // namespace cudl::models
