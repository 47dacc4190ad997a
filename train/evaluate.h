// fridge_eval's library side: load a model.h5 written by fridge_train, then either score it on
// labelled images (metrics at the model's threshold, the 21-threshold sweep, the optimal
// threshold, average precision) or predict labels for unlabelled images. Outputs are
// predictions.csv and a JSON file in the output folder.
#pragma once

#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "layers/module.h"
#include "models/weights_io.h"
#include "tensor/ops/metrics.h"

namespace cudl::train {

struct LoadedModel {
  std::shared_ptr<Module> model;  // in eval mode, on the requested device
  WeightsMeta meta;
  std::vector<std::string> classes;
  std::string arch;  // "resnet18", ...
  int size = 300;
  double threshold = 0.5;
  bool multi_label = true;
};

// Reads a model.h5 (architecture fastai_<arch>, class names, input size, threshold) and builds
// the model on `device`. Throws naming the file when it is not such a model.
LoadedModel load_model(const std::string& path, Device device);

struct EvalOptions {
  std::string model_path;
  std::string device = "auto";
  int64_t bs = 16;
  int workers = 2;
  int threads = 0;
  double threshold = -1;  // < 0: the model's
  std::string out = "fridge_eval_out";
  bool skip_bad = false;
  // bfloat16 autocast for the forward pass (tensor/autocast.h; probabilities in float32), and
  // channels-last activations (train_step.h): as fridge_train's options of the same names.
  bool mixed_precision = false;
  bool channels_last = false;
  // CPU: 3x3 stride-1 convolutions by Winograd's F(4x4, 3x3), as fridge_train (on by default;
  // false: the direct kernels).
  bool winograd = true;
  // ---- scoring ----
  std::string csv, images;  // labelled data (labels.csv + image folder)
  char label_delim = ' ';
  // all | valid | train: rows of fridge_train's random split, made as fridge_train made it
  // (rows read, unreadable images dropped with skip_bad, then split). valid_pct and seed default
  // to the model's own (recorded by fridge_train), else 0.2 and 10; with the model's, the
  // validation files must be those it was validated on. A model trained with --valid-col is
  // split by that column of the labels file instead (valid_pct and seed then refused).
  std::string split = "all";
  std::optional<double> valid_pct;
  std::optional<uint32_t> seed;
  // ---- predicting ----
  std::vector<std::string> predict;  // image files and/or folders (every .jpg/.jpeg/.png)
};

// Scores the model on the labelled data; writes metrics.json and predictions.csv.
MetricsReport score_model(const EvalOptions& options, std::ostream& log);
// Predicts the images; writes predictions.csv and predictions.json. Returns the number of
// images predicted.
int64_t predict_images(const EvalOptions& options, std::ostream& log);

}  // namespace cudl::train
