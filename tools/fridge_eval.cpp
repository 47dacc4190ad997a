// fridge_eval: scores a model.h5 from fridge_train on labelled photos, or predicts the labels
// of unlabelled ones. A thin main over train/evaluate.h.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "tools/cli_checks.h"
#include "train/evaluate.h"
#include "train/failure.h"

int main(int argc, char** argv) {
  cudl::train::EvalOptions o;
  CLI::App app{
      "Scores a model trained by fridge_train on labelled images (hamming and zero-one accuracy "
      "at the model's threshold, the sweep over thresholds 0.00..1.00, the optimal threshold, "
      "average precision per class), or predicts the labels of images without labels "
      "(--predict). Writes predictions.csv and metrics.json / predictions.json into --out.",
      "fridge_eval"};
  app.get_formatter()->column_width(30);
  app.add_option("--model", o.model_path, "model.h5 written by fridge_train")
      ->required()->check(CLI::ExistingFile);
  std::string data_dir;
  auto* data = app.add_option("--data", data_dir, "Labelled dataset folder (labels.csv + images/)")
                   ->check(CLI::ExistingDirectory);
  auto* csv = app.add_option("--csv", o.csv, "Labels file (default DATA/labels.csv)")->check(CLI::ExistingFile);
  app.add_option("--images", o.images, "Image folder (default DATA/images)")->check(CLI::ExistingDirectory);
  std::string delim = " ";
  app.add_option("--label-delim", delim, "Separator between the labels of one image (default: a space)")
      ->check([](const std::string& s) { return s.size() == 1 ? "" : "must be one character"; });
  app.add_option("--split", o.split,
                 "Which rows to score: all, or the valid/train part of fridge_train's split (its random "
                 "split, or the rows its --valid-col marks)")
      ->capture_default_str()->check(CLI::IsMember({"all", "valid", "train"}));
  double valid_pct = 0.2;
  uint32_t seed = 10;
  auto* valid_pct_opt = app.add_option("--valid-pct", valid_pct,
                                       "Validation fraction of that random split (default: the "
                                       "model's, else 0.2; not for a model split by --valid-col)")
                            ->check(cudl::tools::finite())->check(CLI::Range(0.0, 0.95));
  auto* seed_opt = app.add_option("--seed", seed, "Seed of that random split (default: the model's, else 10)");
  auto* predict = app.add_option("--predict", o.predict,
                                 "Image files or folders to label (no labels needed; a folder's .jpg, .jpeg "
                                 "and .png files, in its subfolders too)")
                      ->expected(1, -1)->check(CLI::ExistingPath);
  app.add_option("--threshold", o.threshold,
                 "Decision threshold on probabilities of a multi-label model (default: the "
                 "model's; a single-label model predicts its most probable class)")
      ->check(cudl::tools::finite())->check(CLI::Range(0.0, 1.0));
  app.add_option("--device", o.device, "auto, cpu, cuda or cuda:N")->capture_default_str()->check(cudl::tools::device_name());
  app.add_option("--bs", o.bs, "Batch size")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--workers", o.workers, "Data-loading threads")->capture_default_str()->check(CLI::Range(0, 64));
  app.add_option("--threads", o.threads, "CPU threads for the computation (0: all cores)")
      ->capture_default_str()->check(CLI::Range(0, 1024));
  app.add_option("--out", o.out, "Output folder")->capture_default_str()->check(cudl::tools::output_folder());
  app.add_flag("--skip-bad", o.skip_bad, "Skip unreadable images and bad label rows with a warning");
  app.add_flag("--mixed-precision", o.mixed_precision,
               "Run the model in bfloat16 mixed precision (torch.autocast(dtype=torch.bfloat16)), "
               "as fridge_train --mixed-precision: for GPUs with bfloat16 tensor cores and CPUs "
               "with bfloat16 instructions (AVX512-BF16 or AMX)");
  app.add_flag("--channels-last", o.channels_last,
               "Channels-last (NHWC) activations, as fridge_train --channels-last: for GPUs; the "
               "same results");
  app.add_flag("--winograd,!--no-winograd", o.winograd,
               "On the CPU, 3x3 stride-1 convolutions by Winograd's F(4x4,3x3) (default: on), as "
               "fridge_train: faster, with float32 rounding errors of about 1e-5 of the values "
               "against the direct convolution's 1e-7. --no-winograd: direct convolutions only. "
               "With --mixed-precision on a CPU with bfloat16 instructions oneDNN's bfloat16 "
               "kernels compute ResNet-18's convolutions instead");
  data->excludes(predict);
  csv->excludes(predict);
  app.footer(
      "Examples:\n  fridge_eval --model run1/model.h5 --data multilabelFridgeObjects --split valid\n"
      "  fridge_eval --model run1/model.h5 --predict photos/ extra.jpg\n"
      "Exit codes: 0 ok, 1 failure (unreadable model or images, ...), 2 usage error.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is 0; every usage error is 2
  }
  if (!cudl::tools::output_folder_usable(o.out)) return 2;  // also the default
  if (valid_pct_opt->count() > 0) o.valid_pct = valid_pct;
  if (seed_opt->count() > 0) o.seed = seed;
  if (!data_dir.empty()) {
    if (o.csv.empty()) o.csv = (std::filesystem::path(data_dir) / "labels.csv").string();
    if (o.images.empty()) o.images = (std::filesystem::path(data_dir) / "images").string();
  }
  if (o.predict.empty() && o.csv.empty()) {
    std::fprintf(stderr, "fridge_eval: give labelled data (--data or --csv) to score, or --predict "
                         "with images\nRun with --help for more information.\n");
    return 2;
  }
  if (!o.csv.empty() && o.images.empty())
    o.images = (std::filesystem::path(cudl::tools::dataset_folder_of(o.csv)) / "images").string();
  o.label_delim = delim[0];
  try {
    if (!o.predict.empty()) {
      cudl::train::predict_images(o, std::cout);
    } else {
      cudl::train::score_model(o, std::cout);
    }
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fputs(cudl::train::failure_report("fridge_eval", e).c_str(), stderr);
    return 1;
  }
  return 0;
}
