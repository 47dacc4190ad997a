// A model summary like fastai's learn.summary(): every leaf layer in execution order with its
// output shape (without the batch dimension), its parameter count and whether it trains, then
// the totals. Computed by one forward pass in eval mode without gradients on a zero input.
#pragma once

#include <string>
#include <vector>

#include "layers/module.h"

namespace cudl::models {

struct SummaryRow {
  std::string name;  // dotted name in the model ("body.layer1.0.conv1")
  std::string type;  // "Conv2d"
  Shape output_shape;
  int64_t params = 0;
  bool trainable = false;
};

struct ModelSummary {
  std::vector<SummaryRow> rows;
  int64_t total_params = 0, trainable_params = 0;
  std::string to_string() const;  // fastai's table, with the layer names added
};

// input_shape includes the batch dimension, e.g. (1, 3, 300, 300). The model's training mode
// is restored afterwards.
ModelSummary summarize(Module& model, const Shape& input_shape);

}  // namespace cudl::models
