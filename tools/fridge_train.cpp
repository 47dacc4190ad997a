// fridge_train: the notebook (fine-tune a ResNet for multi-label photo tagging) as one command.
// A thin main over train::fit(); every default reproduces RECIPE.md.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "tools/cli_checks.h"
#include "train/failure.h"
#include "train/interrupt.h"
#include "train/learner.h"

namespace {
// Settings used when no --data is given (unless set on the command line): many small images and
// a one-cycle schedule, so that a ResNet-18 from scratch learns the demo data in about a minute
// on two CPU cores. More images beat more epochs here: the model overfits a few hundred
// images (measured settings and results: README, "The demo").
struct DemoDefaults {
  int size = 32;
  int epochs = 7;
  double lr = 1e-2;
  int64_t bs = 64;
  const char* schedule = "one-cycle";
  int64_t images = 1920;
  int image_height = 200;  // rendering 333-pixel images would take longer than 2 epochs
  bool augment = true;

  std::string flags() const {
    std::ostringstream s;
    s << "--size " << size << " --epochs " << epochs << " --lr " << lr << " --bs " << bs
      << " --schedule " << schedule << " --demo-images " << images << " --demo-height "
      << image_height << (augment ? " --augment" : " --no-augment");
    return s.str();
  }
};
}  // namespace

int main(int argc, char** argv) {
  cudl::train::TrainOptions o;
  CLI::App app{
      "Trains a ResNet to tag photos with several labels at once (multi-label), as the fastai "
      "notebook does: split 20% for validation (NumPy seed 10), resize to 300x300, ResNet body "
      "+ fastai head, BCE-with-logits, AdamW, 10 epochs at lr 1e-4; from ImageNet weights with "
      "--weights, from scratch otherwise. Data with exactly one label per image trains a "
      "single-label classifier (cross-entropy). Prints the fastai table per epoch, then the "
      "optimal threshold (multi-label), and writes model.h5, checkpoint.h5, "
      "history.csv, metrics.json, predictions.csv and report.html into --out.\n" +
      cudl::train::demo_description(),
      "fridge_train"};
  app.get_formatter()->column_width(34);
  DemoDefaults demo;
  auto* data = app.add_option("--data", o.data_dir,
                              "Dataset folder with labels.csv (columns filename, labels) and "
                              "images/; without it (and without --csv), the built-in demo data")
                   ->check(CLI::ExistingDirectory);
  auto* csv = app.add_option("--csv", o.csv, "Labels file (default DATA/labels.csv; without "
                             "--data, DATA is the file's folder)")->check(CLI::ExistingFile);
  auto* images = app.add_option("--images", o.images, "Image folder (default DATA/images)")
                     ->check(CLI::ExistingDirectory);
  auto* valid_csv = app.add_option("--valid-csv", o.valid_csv,
                 "Separate labels file for validation (instead of a random split)")
      ->check(CLI::ExistingFile);
  auto* valid_col = app.add_option("--valid-col", o.valid_col,
                 "Column of the labels file marking the validation rows (true/false or 1/0; "
                 "fastai's ColSplitter, e.g. is_valid) instead of a random split")
      ->check(cudl::tools::non_empty())->excludes(valid_csv);
  std::string delim = " ";
  app.add_option("--label-delim", delim, "Separator between the labels of one image (default: a "
                 "space)")
      ->check([](const std::string& s) { return s.size() == 1 ? "" : "must be one character"; });
  app.add_option("--valid-pct", o.valid_pct, "Fraction of images held out for validation")
      ->capture_default_str()->check(cudl::tools::finite())->check(CLI::Range(0.0, 0.95))
      ->excludes(valid_csv)->excludes(valid_col);
  app.add_option("--seed", o.seed, "Seed of the validation split and of the shuffling (NumPy-identical)")
      ->capture_default_str();
  auto* size = app.add_option("--size", o.size, "Image size: shorter side resized, then centre crop")
                   ->capture_default_str()->check(CLI::Range(32, 4096));
  auto* bs = app.add_option("--bs", o.bs, "Batch size")->capture_default_str()->check(CLI::Range(2, 4096));
  auto* epochs = app.add_option("--epochs", o.epochs, "Epochs")->capture_default_str()->check(CLI::Range(1, 100000));
  auto* lr = app.add_option("--lr", o.lr, "Learning rate (maximum of the one-cycle schedule)")
                 ->capture_default_str()->check(cudl::tools::finite())->check(CLI::PositiveNumber);
  app.add_option("--wd", o.wd, "Decoupled weight decay (AdamW: p *= 1 - lr*wd each step)")
      ->capture_default_str()->check(cudl::tools::finite())->check(CLI::NonNegativeNumber);
  app.add_option("--arch", o.arch, "Architecture of the body")
      ->capture_default_str()->check(CLI::IsMember({"resnet18", "resnet34", "resnet50"}));
  auto* weights = app.add_option("--weights", o.weights,
                 "HDF5 weights from weights_import (torchvision ImageNet backbone for the body), or "
                 "a model.h5 of fridge_train (the whole model; its body only, with a new head, "
                 "when its classes differ); default: train from scratch")
      ->check(CLI::ExistingFile);
  app.add_option("--device", o.device, "auto (CUDA when a GPU answers), cpu, cuda or cuda:N")
      ->capture_default_str()->check(cudl::tools::device_name());
  app.add_option("--threshold", o.threshold,
                 "Decision threshold on probabilities (multi-label: a label is predicted when its "
                 "probability is above it; single-label: the most probable class is); stored in "
                 "model.h5")
      ->capture_default_str()->check(cudl::tools::finite())->check(CLI::Range(0.0, 1.0));
  app.add_option("--out", o.out, "Output folder")->capture_default_str()->check(cudl::tools::output_folder());
  app.add_flag("--resume", o.resume,
               "Continue the run in --out from its checkpoint.h5 after an interruption, with that "
               "run's options (its data, --size, --bs, --epochs, --lr, ...) unless given again: "
               "more --epochs extend it; on the same train/validation split only; options given "
               "that differ from the run's are named")
      ->excludes(weights);
  app.add_flag("--freeze-body", o.freeze_body,
               "Train the head only (default: everything trains, as after learn.unfreeze())");
  auto* schedule = app.add_option("--schedule", o.schedule, "Learning-rate schedule")
                       ->capture_default_str()->check(CLI::IsMember({"constant", "one-cycle"}));
  app.add_option("--workers", o.workers, "Data-loading threads")->capture_default_str()->check(CLI::Range(0, 64));
  app.add_option("--threads", o.threads, "CPU threads for the computation (0: all cores)")
      ->capture_default_str()->check(CLI::Range(0, 1024));
  app.add_flag("--deterministic", o.deterministic,
               "Reproducible results: cuDNN's convolution algorithms picked by heuristics "
               "among those that give the same bits every run, instead of timed (CPU runs are "
               "reproducible for a given thread count either way)");
  bool no_graph = false, no_tf32 = false, no_benchmark = false;
  app.add_flag("--no-benchmark", no_benchmark,
               "On CUDA, cuDNN's heuristics pick the convolution algorithms instead of timing "
               "them once per shape at start-up (PyTorch's default; fastai times them)");
  app.add_flag("--no-cuda-graph", no_graph,
               "On CUDA, run every training step eagerly instead of replaying it from one "
               "captured CUDA graph");
  app.add_flag("--no-tf32", no_tf32,
               "On CUDA, convolutions in full float32 (default: TF32 tensor cores allowed, as "
               "PyTorch's torch.backends.cudnn.allow_tf32)");
  app.add_flag("--mixed-precision", o.mixed_precision,
               "bfloat16 mixed precision, as torch.autocast(dtype=torch.bfloat16): convolutions "
               "and linear layers compute in bfloat16 with float32 accumulation, activations are "
               "stored in bfloat16, weights, gradients and optimiser state stay float32. For GPUs "
               "with bfloat16 tensor cores (compute capability 8.0 and later), and for CPUs "
               "with bfloat16 instructions (AVX512-BF16 or AMX), where the convolutions run on "
               "oneDNN's bfloat16 kernels, faster than float32; on other CPUs it rounds the same "
               "way but runs slower than float32");
  app.add_flag("--channels-last", o.channels_last,
               "Channels-last (NHWC) activations, as model.to(memory_format=torch.channels_last): "
               "the layout of cuDNN's tensor-core convolutions, meant for GPUs, with "
               "--mixed-precision above all; the same results. On the CPU the float32 "
               "convolutions convert to NCHW and back, so it costs time there (bfloat16 ones on "
               "oneDNN's kernels take either layout at the same speed)");
  app.add_flag("--winograd,!--no-winograd", o.winograd,
               "On the CPU, 3x3 stride-1 convolutions by Winograd's F(4x4,3x3) (default: on): a "
               "faster training step (1.6x for ResNet-18 at 16 x 300x300 on a 2-core AVX2 "
               "machine) with float32 rounding errors of about 1e-5 of the values, against the "
               "direct convolution's 1e-7 (CUDA's TF32 rounds each input to 5e-4). --no-winograd: direct "
               "convolutions only, as PyTorch's CPU. With --mixed-precision on a CPU with "
               "bfloat16 instructions oneDNN's bfloat16 kernels compute ResNet-18's convolutions "
               "instead");
  app.add_flag("--skip-bad", o.skip_bad, "Skip unreadable images and bad label rows with a warning");
  app.add_flag("--allow-empty", o.allow_empty,
               "Rows with no labels are images with none of the classes (multi-label negatives, "
               "e.g. an empty fridge) instead of bad rows");
  auto* augment = app.add_flag("--augment,!--no-augment", o.augment,
                               "Augment training images: random horizontal flips and +-10% "
                               "brightness/contrast (off by default, as in the notebook)");
  app.add_option("--init-seed", o.init_seed, "Seed of the initial weights and of dropout")
      ->capture_default_str();
  auto* demo_images = app.add_option("--demo-images", o.demo_images, "Images in the demo dataset")
                          ->check(CLI::Range(20, 100000));
  auto* demo_height = app.add_option("--demo-height", o.demo_height,
                                     "Height of the demo images in pixels (width: 3/4 of it)")
                          ->check(CLI::Range(43, 4096));
  bool no_progress = false;
  app.add_flag("--no-progress", no_progress, "No live progress bar (it is only drawn on a terminal)");
  app.footer(
      "Demo defaults (without --data or --csv, unless given): " + demo.flags() +
      ".\nExit codes: 0 ok, 1 failure (bad data, ...), 2 usage error, 130 interrupted (Ctrl-C: "
      "the run stops at the next batch, --resume continues it).\nExample: fridge_train --data multilabelFridgeObjects --weights "
      "resnet18_imagenet.h5 --out run1");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is 0; every usage error is 2
  }
  if (!cudl::tools::output_folder_usable(o.out)) return 2;  // also the default
  if (o.resume) {
    // The run's own options, as its checkpoint recorded them, for those not given here: parsed
    // again with them added, so that they pass the same checks as typed ones.
    auto option = [&](const std::string& name) { return app.get_option_no_throw(name); };
    std::vector<std::string> restored;
    try {
      restored = cudl::train::recorded_options(
          o.out, [&](const std::string& name) { return option(name) != nullptr; },
          [&](const std::string& name) { return option(name) && option(name)->count() > 0; });
    } catch (const std::exception& e) {
      std::fputs(cudl::train::failure_report("fridge_train", e).c_str(), stderr);
      return 1;
    }
    if (!restored.empty()) {
      std::string shown;
      for (const std::string& a : restored)
        shown += " " + (a.empty() || a.find(' ') != std::string::npos ? "'" + a + "'" : a);
      std::printf("Resuming the run in %s with its options:%s\n", o.out.c_str(), shown.c_str());
      std::vector<std::string> args(argv + 1, argv + argc);
      args.insert(args.end(), restored.begin(), restored.end());
      std::reverse(args.begin(), args.end());  // CLI11 takes a vector last argument first
      app.clear();
      try {
        app.parse(args);
      } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
      }
    }
  }
  // --csv alone names the dataset (its folder is DATA, as in fridge_eval); --images alone does
  // not say which labels go with the images.
  if (data->count() == 0 && csv->count() > 0) {
    o.data_dir = cudl::tools::dataset_folder_of(o.csv);
  } else if (data->count() == 0 && images->count() > 0) {
    std::fprintf(stderr, "fridge_train: --images needs the labels that go with them: give --data "
                         "or --csv too\nRun with --help for more information.\n");
    return 2;
  }
  o.label_delim = delim[0];
  o.progress = !no_progress;
  o.cuda_graph = !no_graph;
  o.tf32 = !no_tf32;
  o.benchmark = !no_benchmark;
  if (o.data_dir.empty()) {
    if (size->count() == 0) o.size = demo.size;
    if (epochs->count() == 0) o.epochs = demo.epochs;
    if (lr->count() == 0) o.lr = demo.lr;
    if (bs->count() == 0) o.bs = demo.bs;
    if (schedule->count() == 0) o.schedule = demo.schedule;
    if (demo_images->count() == 0) o.demo_images = demo.images;
    // Tall enough that the centre square crop is not enlarged when --size is given.
    if (demo_height->count() == 0) o.demo_height = std::max(demo.image_height, (4 * o.size + 2) / 3);
    if (augment->count() == 0) o.augment = demo.augment;
  }
  std::string checkpoint;  // this run's, offered to --resume after a failure
  cudl::train::install_interrupt_handler("fridge_train");
  try {
    cudl::train::fit(o, std::cout, &checkpoint);
  } catch (const cudl::train::Interrupted& e) {
    std::fflush(stdout);
    if (checkpoint.empty())
      std::fprintf(stderr, "fridge_train: stopped before the first checkpoint\n");
    else
      std::fprintf(stderr, "fridge_train: stopped; --resume (with the same --out) continues from "
                           "%s\n", checkpoint.c_str());
    return 128 + e.signal();
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fputs(cudl::train::failure_report("fridge_train", e, checkpoint, /*allow_empty=*/true).c_str(), stderr);
    return 1;
  }
  return 0;
}
