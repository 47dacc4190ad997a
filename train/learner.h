// fit(): the notebook (RECIPE.md) as one function, used by the fridge_train program.
//
//   data   labels.csv + images/ -> NumPy-identical split -> resize/crop/normalise, batches of bs
//   model  notebook_model(arch, C): ResNet body (+ ImageNet weights from --weights) and the
//          fastai head; all of it trains (learn.unfreeze()) unless freeze_body
//   loss   BCE-with-logits for multi-label data, cross-entropy for single-label (fastai's rule)
//   opt    AdamW with decoupled weight decay (lr, wd, betas (0.9, 0.99), eps 1e-8), constant lr
//          or fastai's one-cycle schedule
//   each epoch: train (smoothed loss as fastai shows it, metrics on the training batches),
//          validate (mean loss, metrics at the threshold), history.csv and checkpoint.h5
//          written atomically
//   end:   threshold sweep on the validation probabilities, the optimal threshold (first
//          strictly best zero-one accuracy), model.h5, metrics.json, predictions.csv, report.html
//
// Resuming (resume = true) continues after the last completed epoch of OUT/checkpoint.h5:
// weights, optimiser moments, epoch, random-generator state and the history; the per-epoch
// shuffle depends only on (seed, epoch), so the run continues as if never interrupted. Each
// checkpoint records the run's settings: a resume on another train/validation split (other
// validation files, in whatever order they are listed) or with another freeze_body is refused,
// and every other setting that differs (more epochs, another lr, the device, the CPU's
// convolutions or thread count, ...) is named in the log.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "tensor/ops/metrics.h"
#include "train/report.h"

namespace cudl::train {

struct TrainOptions {
  // ---- data ----
  std::string data_dir;   // DATA with labels.csv and images/; empty = the built-in demo data
  std::string csv;        // default DATA/labels.csv
  std::string images;     // default DATA/images
  std::string valid_csv;  // a separate validation labels file (images in the same folder)
  // A boolean column of the labels file that marks the validation rows (fastai's
  // ColSplitter('is_valid')); with valid_csv empty. Empty: the random split of valid_pct, seed.
  std::string valid_col;
  char label_delim = ' ';
  double valid_pct = 0.2;
  uint32_t seed = 10;
  int size = 300;
  bool skip_bad = false;
  // Rows with an empty labels field are images with none of the classes (multi-label
  // negatives, e.g. an empty fridge) instead of bad rows.
  bool allow_empty = false;
  // Training-time augmentation (off by default, as in the notebook): random horizontal flips
  // and brightness/contrast jitter of +-10%.
  bool augment = false;
  // ---- model ----
  std::string arch = "resnet18";
  std::string weights;  // HDF5 from weights_import: a torchvision backbone, or a whole model
  bool freeze_body = false;
  // ---- optimisation ----
  int64_t bs = 16;
  int epochs = 10;
  double lr = 1e-4;
  double wd = 1e-2;
  std::string schedule = "constant";  // or "one-cycle"
  // ---- run ----
  std::string device = "auto";
  int workers = 2;
  int threads = 0;  // CPU threads for the ops; 0 = all cores
  bool deterministic = false;
  // CUDA: cuDNN's convolution algorithms timed once per shape (as fastai's
  // torch.backends.cudnn.benchmark = True); false: picked by its heuristics (PyTorch's default).
  bool benchmark = true;
  bool cuda_graph = true;  // CUDA: replay the training step from a CUDA graph (train_step.h)
  bool tf32 = true;        // CUDA: TF32 in cuDNN convolutions, as PyTorch allows by default
  // bfloat16 mixed precision (tensor/autocast.h) for training and validation; the model, its
  // gradients, the optimiser and every file written stay float32.
  bool mixed_precision = false;
  // Channels-last activations (train_step.h) for training and validation.
  bool channels_last = false;
  // CPU: 3x3 stride-1 convolutions by Winograd's F(4x4, 3x3) (CpuConvPath::kWinograd): faster
  // (1.6x a ResNet-18 step at 16 x 300x300), with float32 rounding errors of about 1e-5 of the
  // values instead of the direct kernels' 1e-7. On by default, as TF32 is on CUDA (which rounds
  // every input to 11 significant bits, 5e-4); false: the direct kernels (CpuConvPath::kAuto),
  // as PyTorch's CPU.
  bool winograd = true;
  double threshold = 0.5;
  std::string out = "fridge_out";
  bool resume = false;
  bool progress = true;    // live progress bar when stderr is a terminal
  uint64_t init_seed = 0;  // weights of the head (and of the body without --weights), dropout
  // ---- demo data (data_dir empty) ----
  int64_t demo_images = 128;
  int demo_height = 333;  // of the demo images; the width is 3/4 of it (portrait, as the photos)
  uint64_t demo_seed = 0;
};

struct TrainResult {
  std::vector<EpochRecord> history;
  MetricsReport valid;  // final validation metrics at the threshold, sweep and optimum
  double seconds = 0;   // the whole fit, data loading included
  std::string out_dir;
};

// checkpoint, when given: set to this run's checkpoint, the last one it wrote or else the one it
// resumed from ("" when neither), also when fit() throws (its checkpoint writer has finished by
// then). fridge_train offers it to --resume after a GPU failure.
TrainResult fit(const TrainOptions& options, std::ostream& log, std::string* checkpoint = nullptr);

// --resume: the options of the run in `out_dir` that its checkpoint recorded (settings) and
// that were not given again, as command-line arguments to add: {"--size", "32", "--augment",
// "--no-winograd", ...}. is_option(name) says whether the program has the option (a later
// version's record may have more), given(name) whether the command line gave it. The data
// options (--csv, --images, --valid-csv, recorded when the run had data other than the demo's)
// come back together, and only when none of --data, --csv and --images was given. The split
// options (--valid-pct, --valid-csv, --valid-col) come back only when none of them was given.
// Empty when out_dir has no checkpoint (the resume itself then says so) or it records nothing.
std::vector<std::string> recorded_options(const std::string& out_dir,
                                          const std::function<bool(const std::string&)>& is_option,
                                          const std::function<bool(const std::string&)>& given);

// The demo defaults, for the documentation and the tool: what fit() trains on without data.
std::string demo_description();

}  // namespace cudl::train
