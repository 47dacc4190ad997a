// Between a live model (Module) and weights files (weights_io.h): the model's state as named
// tensors, its spec (names, shapes, dtypes) for checking files, and loading checked weights.
#pragma once

#include <string>
#include <vector>

#include "layers/module.h"
#include "models/resnet_spec.h"
#include "models/weights_io.h"

namespace cudl::models {

// state_dict() in order, as NamedTensors (detached views of the live data, no copy).
NamedTensors named_state(const Module& model);
// The model's own state-dict spec, in order.
std::vector<TensorSpec> spec_of(const Module& model);
// Copies tensors (any device/dtype) into the model, all names and shapes checked first
// (Module::load_state_dict); strict = every entry both ways.
void load_named(Module& model, const NamedTensors& tensors, bool strict = true);
// Loads a weights file (HDF5) checked against the model's spec; every mismatch is listed in
// one error that names the file.
void load_weights_into(Module& model, const std::string& path);
// Loads a torchvision ResNet backbone (an HDF5 file from weights_import, with or without fc)
// into the body of a notebook_model: body.<name> <- <name>, fc.* ignored; the head keeps its
// initialisation. Every body tensor must be present with the right shape.
void load_backbone_into(Module& notebook_model, const std::string& path);
// Loads the body of a notebook_model from a file whose names already carry "body." (a
// fridge_train model, or weights_import --prefix body.); its head.* tensors, if any, are left
// out and the model's head keeps its initialisation. Every body tensor must be present.
void load_body_into(Module& notebook_model, const std::string& path);
// The same three from a file already read (load_weights(path)); `path` names it in errors.
void load_weights_into(Module& model, const WeightsFile& file, const std::string& path);
void load_backbone_into(Module& notebook_model, const WeightsFile& file, const std::string& path);
void load_body_into(Module& notebook_model, const WeightsFile& file, const std::string& path);

}  // namespace cudl::models
