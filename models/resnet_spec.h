// The tensors (names, shapes, dtypes, in state-dict order) of the architectures cudl knows,
// used to check a weights file before it is written or loaded. weights/README.md documents the
// naming; the model classes in models/ produce exactly these names.
//
//   "resnet18", "resnet34", "resnet50": torchvision's ResNets (state_dict() of
//       torchvision.models.resnetNN(num_classes=C)): conv1, bn1, layer1..layer4, fc.
//   "fastai_resnet18", "fastai_resnet34", "fastai_resnet50": the notebook's model
//       (cnn_learner): body.<torchvision name> for the ResNet without avgpool and fc, then the
//       head under its nn.Sequential indices:
//         head.0 AdaptiveConcatPool2d, head.1 Flatten,
//         head.2 BatchNorm1d(2F)      weight, bias, running_mean, running_var (2F,),
//                                     num_batches_tracked ()
//         head.3 Dropout(0.25),
//         head.4 Linear(2F, 512)      weight (512, 2F), bias (512,)
//         head.5 ReLU,
//         head.6 BatchNorm1d(512)     as head.2 with 512
//         head.7 Dropout(0.5),
//         head.8 Linear(512, C)       weight (C, 512), bias (C,)
//       where F = 512 (resnet18/34) or 2048 (resnet50) body features.
// BatchNorm counters (num_batches_tracked) are int64 scalars; everything else is float32.
#pragma once

#include <string>
#include <vector>

#include "models/weights_io.h"

namespace cudl {

// "resnet18", "resnet34", "resnet50".
const std::vector<std::string>& resnet_architectures();

// torchvision's resnetNN state dict with an fc of `num_classes` outputs.
std::vector<TensorSpec> torchvision_resnet_spec(const std::string& arch,
                                                int64_t num_classes = 1000);

// The notebook's model for a ResNet `arch` ("resnet18", ...) with `num_classes` outputs.
std::vector<TensorSpec> fastai_resnet_spec(const std::string& arch, int64_t num_classes);

// Either family by full name: "resnet18" ... or "fastai_resnet18" ...
std::vector<TensorSpec> architecture_spec(const std::string& name, int64_t num_classes);

}  // namespace cudl
