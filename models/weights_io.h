// cudl's weights and checkpoint files (HDF5), and the checks that match a file to a model.
//
// Weights file (format "cudl-weights", version 1; weights/README.md has the full schema):
//   - one dataset per state-dict entry; the dotted PyTorch name is the path with '.' -> '/'
//     ("layer1.0.conv1.weight" -> /layer1/0/conv1/weight), in PyTorch's memory layout (OIHW
//     for convolutions, (out, in) for linear layers);
//   - float32 datasets (float16 when saved with fp16 = true; read back as float32), int64 for
//     counters (BatchNorm's num_batches_tracked, shape ());
//   - root attributes: format, format_version, and the optional WeightsMeta fields.
// Checkpoint file (format "cudl-checkpoint", version 1): the same model datasets at the same
// paths, the optimiser's named tensors under /optimizer/, and the root attributes epoch,
// rng_seed and rng_offset. load_weights() reads a checkpoint's model too.
//
// Both files are written atomically: into a temporary file in the target's directory, flushed
// and fsync'ed, then renamed over the target (and the directory fsync'ed). A reader sees the
// old file or the new one, never a partial one; on any error the temporary file is removed and
// the previous file is untouched.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace cudl {

// An ordered state dict: (dotted name, tensor) in the model's order.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

constexpr const char* kWeightsFormat = "cudl-weights";
constexpr const char* kCheckpointFormat = "cudl-checkpoint";
constexpr int64_t kWeightsFormatVersion = 1;

// What a weights file says about itself (root attributes). Unset fields are not written.
struct WeightsMeta {
  std::optional<std::string> architecture;              // "resnet18", "fastai_resnet18", ...
  std::optional<std::vector<std::string>> class_names;  // output order of the last layer
  std::optional<std::vector<int64_t>> input_size;       // (C, H, W), e.g. (3, 300, 300)
  std::optional<std::vector<double>> norm_mean;         // per-channel normalisation mean
  std::optional<std::vector<double>> norm_std;          // per-channel normalisation std
  std::optional<double> threshold;                      // decision threshold on probabilities
  std::optional<std::string> source;                    // provenance, e.g. the imported file
  // "multi_label" (sigmoid per class) or "single_label" (softmax); absent = multi_label.
  std::optional<std::string> task;
  // fridge_train's train/validation split, as JSON text: "mode" ("random" with "valid_pct" and
  // "seed"; "valid_csv" with "valid_csv"; or "valid_column" with "valid_column"), "skip_bad",
  // "allow_empty", "n_train", "n_valid" and "valid_files" (a fingerprint of the validation
  // files' names, data::file_set_hash).
  std::optional<std::string> split;
};

struct SaveOptions {
  // Store float32 tensors as IEEE float16 datasets (half the size; loading widens them back to
  // float32 exactly, the rounding happened once at save time). A value beyond float16's range
  // (|x| > 65504) is an error rather than an infinity.
  bool fp16 = false;
};

struct WeightsFile {
  NamedTensors tensors;  // CPU tensors, float32 or int64, in the file's order
  WeightsMeta meta;
  std::string format;  // kWeightsFormat, kCheckpointFormat, or "" for a plain HDF5 file
  int64_t format_version = 0;
};

// Writes `tensors` (any device; float32 or int64) atomically. Names must be non-empty dotted
// paths without empty parts or '/', unique, and none may be a prefix-path of another
// ("a.b" and "a.b.c" cannot both be datasets).
void save_weights(const std::string& path, const NamedTensors& tensors,
                  const WeightsMeta& meta = {}, const SaveOptions& options = {});
// Reads every tensor (a checkpoint's /optimizer group is left out) and the attributes. A plain
// HDF5 file without our attributes (e.g. written by h5py) is accepted: format is "" then. A
// file with another format name or a newer version is refused.
WeightsFile load_weights(const std::string& path);

// ---- matching a file to a model ----

struct TensorSpec {
  std::string name;
  Shape shape;
  DType dtype = kFloat32;
};

// How names in a file map onto a model's names.
struct WeightsMapping {
  std::string strip_prefix;         // removed from each file name first (names without it are
                                    // unexpected unless ignored)
  std::string add_prefix;           // then prepended: "conv1.weight" -> "body.conv1.weight"
  std::vector<std::string> ignore;  // file names to skip, before any prefix change; '*' matches
                                    // any run of characters ("fc.*")
  std::string required_prefix;      // only expected entries starting with this must be present
                                    // (the others keep the model's values); "" = all
};

// A torchvision ResNet file into the notebook model's body: conv1.weight -> body.conv1.weight,
// fc.* ignored, only body.* required (the head keeps its initialisation).
WeightsMapping torchvision_backbone_to_body();

// Maps and checks `tensors` against `expected`: every expected (required) name present, no
// unexpected name, shapes and dtypes equal. On any problem throws one cudl::Error that lists
// all of them (missing, unexpected, wrong shape, wrong dtype), introduced by `what` (e.g. the
// file name and the architecture). Returns the matched tensors in `expected`'s order.
NamedTensors match_weights(const NamedTensors& tensors, const std::vector<TensorSpec>& expected,
                           const WeightsMapping& mapping = {}, const std::string& what = "weights");
// match_weights(...) of a file read by load_weights(path), with the file name (and the
// architecture it records) in the message.
NamedTensors match_weights_file(const WeightsFile& file, const std::string& path,
                                const std::vector<TensorSpec>& expected,
                                const WeightsMapping& mapping = {});
// load_weights(path) then match_weights_file(...).
NamedTensors load_weights_checked(const std::string& path, const std::vector<TensorSpec>& expected,
                                  const WeightsMapping& mapping = {});

// True when `name` matches `pattern` ('*' = any run of characters, everything else literal).
bool name_matches(const std::string& pattern, const std::string& name);

// ---- checkpoints ----

struct Checkpoint {
  NamedTensors model;      // the model's state dict (same names as a weights file)
  NamedTensors optimizer;  // optimiser state, e.g. "exp_avg.layer1.0.conv1.weight", "step"
  WeightsMeta meta;
  int64_t epoch = 0;      // epochs completed
  uint64_t rng_seed = 0;  // Generator state: seed and Philox offset
  uint64_t rng_offset = 0;
  // The settings of the run that wrote it, as its writer chose to record them (fridge_train:
  // a JSON object, compared on --resume); empty when none were recorded (older checkpoints).
  std::string settings;
};

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);
// With tensors false only the attributes are read (meta, epoch, generator state, settings):
// what a checkpoint is, without its hundreds of MB.
Checkpoint load_checkpoint(const std::string& path, bool tensors = true);

namespace testing_hooks {
// Called by the atomic writer at "written" (all data in the temporary file, before it is
// closed) and "synced" (closed and fsync'ed, before the rename), with the temporary file's
// path. A hook that throws simulates a crash there. Tests only; pass {} to remove it.
void set_atomic_write_hook(std::function<void(const std::string& stage, const std::string& tmp)>);
}  // namespace testing_hooks

}  // namespace cudl
