#include "train/evaluate.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>
#include <utility>

#include "data/dataset.h"
#include "data/loader.h"
#include "data/split.h"
#include "models/model_io.h"
#include "models/resnet.h"
#include "tensor/autocast.h"
#include "tensor/ops.h"
#include "tensor/ops/conv.h"
#include "train/files.h"
#include "train/outputs.h"
#include "train/scoring.h"
#include "train/train_step.h"

namespace cudl::train {

namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

struct Predictions {
  Tensor probs;  // (N, C) on the host
  MetricsReport report;
  double loss = 0;
};

// Runs the model over a dataset in order. With labels, accumulates metrics and the loss.
Predictions run(const LoadedModel& m, std::shared_ptr<data::ImageDataset> ds, const EvalOptions& o,
                Device device, bool labelled, double threshold) {
  data::DataLoaderOptions lo;
  lo.batch_size = o.bs;
  lo.num_workers = o.workers;
  lo.device = device;
  data::DataLoader loader(ds, lo);
  const int64_t c = static_cast<int64_t>(m.classes.size());
  Scorer acc(c, device, m.multi_label);
  NoGradGuard no_grad;
  data::Batch b;
  double loss_sum = 0;
  loader.start_epoch(0);
  while (loader.next(b)) {
    Tensor logits;
    {
      AutocastGuard autocast(o.mixed_precision);
      // bfloat16 under autocast: scored in float32
      logits = (*m.model)(model_input(b.images, o.channels_last)).to(kFloat32);
    }
    if (labelled) {
      const LossKind kind = m.multi_label ? LossKind::kBCEWithLogits : LossKind::kCrossEntropy;
      loss_sum += compute_loss(kind, logits, b.targets).item() * b.size();
    }
    acc.append(logits, labelled ? b.targets : zeros({b.size(), c}, TensorOptions().device(device)));
  }
  Predictions p;
  p.probs = acc.probabilities().to(Device::cpu()).contiguous();
  if (labelled) {
    p.report = acc.compute(threshold, Metric::kZeroOneAccuracy);
    p.loss = loss_sum / static_cast<double>(std::max<int64_t>(ds->size(), 1));
  }
  return p;
}

// predictions.csv of a dataset: true labels (in class order) when labelled.
std::string dataset_predictions(const LoadedModel& m, const data::ImageDataset& ds,
                                const Tensor& probs, double threshold, bool labelled) {
  std::vector<std::string> filenames;
  std::vector<std::vector<std::string>> truth;
  for (int64_t i = 0; i < ds.size(); ++i) {
    filenames.push_back(ds.item(i).filename);
    truth.emplace_back();
    for (int id : ds.item(i).label_ids) truth.back().push_back(m.classes[id]);
  }
  const std::vector<float> p = probs.to_vector<float>();
  return predictions_csv(m.classes, filenames, p,
                         predicted_classes(p, static_cast<int64_t>(m.classes.size()), threshold,
                                           m.multi_label),
                         labelled ? &truth : nullptr);
}

bool is_image_file(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

// The image files in a folder and its subfolders, as fastai's get_image_files lists them (hidden
// files and folders, whose names start with '.', left out), sorted by path. Links to folders are
// not followed (a link back up would never end); unreadable subfolders are passed over, an
// unreadable `folder` is an error.
std::vector<std::filesystem::path> image_files_under(const std::filesystem::path& folder) {
  namespace fs = std::filesystem;
  auto hidden = [](const fs::path& p) { return p.filename().string().rfind('.', 0) == 0; };
  (void)fs::directory_iterator(folder);  // throws, naming the folder, when it cannot be read
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(folder, fs::directory_options::skip_permission_denied);
       it != fs::recursive_directory_iterator(); ++it) {
    if (hidden(it->path())) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && is_image_file(it->path())) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

LoadedModel load_model(const std::string& path, Device device) {
  WeightsFile f = load_weights(path);
  LoadedModel m;
  m.meta = f.meta;
  const std::string arch = f.meta.architecture.value_or("");
  CUDL_CHECK(arch.rfind("fastai_", 0) == 0, path, ": not a fridge_train model (architecture '",
             arch, "', expected fastai_resnet18, fastai_resnet34 or fastai_resnet50)");
  CUDL_CHECK(f.meta.class_names && !f.meta.class_names->empty(), path,
             ": the file does not name its classes (attribute class_names)");
  m.arch = arch.substr(7);
  m.classes = *f.meta.class_names;
  if (f.meta.input_size) {
    CUDL_CHECK(f.meta.input_size->size() == 3 && (*f.meta.input_size)[1] == (*f.meta.input_size)[2],
               path, ": input_size must be (3, S, S)");
    m.size = static_cast<int>((*f.meta.input_size)[1]);
  }
  m.threshold = f.meta.threshold.value_or(0.5);
  m.multi_label = f.meta.task.value_or("multi_label") != "single_label";
  auto model = models::notebook_model(models::parse_arch(m.arch), static_cast<int64_t>(m.classes.size()));
  models::load_weights_into(*model, f, path);
  model->to(device);
  model->eval();
  m.model = model;
  return m;
}

// Threads, device and model of one fridge_eval run, and its threshold (--threshold, else the
// model's).
struct Session {
  Device device;
  LoadedModel m;
  double threshold;
};
Session open_session(const EvalOptions& o) {
  if (o.threads > 0) set_num_threads(o.threads);
  const Device device = Device::parse(o.device);
  set_cpu_conv_path(o.winograd ? CpuConvPath::kWinograd : CpuConvPath::kAuto);
  CUDL_CHECK(o.bs >= 1, "the batch size must be positive, got ", o.bs);
  LoadedModel m = load_model(o.model_path, device);
  make_dirs(o.out);  // an unwritable --out is found before the images are run
  const std::string slower =
      ComputeMode::of(device, o.mixed_precision, o.channels_last, o.winograd).slower_options();
  if (!slower.empty()) log_warning(slower);
  const double threshold = o.threshold >= 0 ? o.threshold : m.threshold;
  return {device, std::move(m), threshold};
}

namespace {

ComputeMode compute_mode(const EvalOptions& o, const Device& device) {
  return ComputeMode::of(device, o.mixed_precision, o.channels_last, o.winograd);
}

// The split fridge_train recorded in the model (an empty object when none was).
nlohmann::json recorded_split(const LoadedModel& m, const EvalOptions& o) {
  if (!m.meta.split) return nlohmann::json::object();
  nlohmann::json rec = nlohmann::json::parse(*m.meta.split, nullptr, /*allow_exceptions=*/false);
  CUDL_CHECK(rec.is_object(), o.model_path, ": unreadable split attribute: ", *m.meta.split);
  return rec;
}

// How fridge_train split the rows (o.split: valid or train), from `rec` (recorded_split()) and
// the options: the valid-pct and seed, and whether they are the model's own. Warns when the
// model records no split.
struct SplitChoice {
  double valid_pct;
  uint32_t seed;
  bool models_own;  // recorded by the model and not overridden
};
SplitChoice split_choice(const EvalOptions& o, const nlohmann::json& rec) {
  SplitChoice c{o.valid_pct.value_or(rec.value("valid_pct", 0.2)),
                o.seed.value_or(rec.value("seed", uint32_t{10})), false};
  if (!rec.contains("valid_pct") && !(o.valid_pct && o.seed)) {
    // A model written before fridge_train recorded its split: its defaults are all there is.
    log_warning(o.model_path + " does not record the split it was trained with (it was written "
                "by an older fridge_train): scoring the split of valid-pct " + str(c.valid_pct) +
                ", seed " + std::to_string(c.seed) + " (fridge_train's defaults unless given), "
                "unchecked. If the model was trained with another --valid-pct or --seed, give "
                "them, or its --split scores mix training and validation images");
  }
  // Another split than the model's is asked for on purpose (the model's own values are not).
  c.models_own = rec.contains("valid_pct") && c.valid_pct == rec.value("valid_pct", 0.2) &&
                 c.seed == rec.value("seed", uint32_t{10});
  return c;
}

// The model's own split must give the validation files it was validated on.
void check_split(const data::ImageDataset& valid, const EvalOptions& o, const nlohmann::json& rec) {
  if (!rec.contains("valid_files")) return;
  const bool same = data::file_set_hash(valid) == rec["valid_files"].get<std::string>() &&
                    valid.size() == rec.value("n_valid", int64_t{-1});
  const bool column = rec.value("mode", "random") == "valid_column";
  CUDL_CHECK(same, o.csv, ": this split's ", valid.size(), " validation images are not the ",
             rec.value("n_valid", int64_t{-1}), " that ", o.model_path, " was validated on, so ",
             "its --split ", o.split, " scores would mix training and validation images. Score "
             "the data it was trained on", rec.value("skip_bad", false) ? " with --skip-bad" : "",
             column ? ", or score all its rows with --split all"
                    : ", or give another --seed or --valid-pct to score another split on purpose");
}

}  // namespace

MetricsReport score_model(const EvalOptions& o, std::ostream& log) {
  const auto [device, m, threshold] = open_session(o);
  CUDL_CHECK(!o.csv.empty(), "scoring needs a labels file (--data or --csv)");

  // Said first: a refused row (e.g. two labels for a single-label model) then follows it.
  log << "Model: " << o.model_path << " (" << m.arch << ", "
      << (m.multi_label ? "multi-label" : "single-label") << ", classes ";
  for (size_t i = 0; i < m.classes.size(); ++i) log << (i ? ", " : "") << m.classes[i];
  log << "; input " << m.size << "x" << m.size << ") on " << device.str()
      << compute_mode(o, device).text() << "\n";
  // The rows as fridge_train read them: the model's classes in its output order (an unknown
  // label makes a bad row) and its task, not what these rows happen to hold (a multi-label
  // model scored on images with one label each is still scored per class).
  data::ImageDataOptions d;
  d.csv_path = o.csv;
  d.image_dir = o.images;
  d.labels.label_delimiter = o.label_delim;
  d.labels.skip_bad = o.skip_bad;
  d.labels.classes = m.classes;
  d.multi_label = m.multi_label;
  d.load.size = m.size;
  d.threads = o.workers;
  d.split = data::SplitMode::kNone;
  d.labels.valid_column.clear();  // read only for the split of a model trained with --valid-col
  const nlohmann::json rec = recorded_split(m, o);
  std::string split_note;
  SplitChoice choice{};
  const std::string mode = rec.value("mode", "random");
  if (o.split != "all" && mode == "valid_column") {
    // --split: the rows the model's validation column marks (or does not), as fridge_train split.
    const std::string column = rec.value("valid_column", "is_valid");
    CUDL_CHECK(!o.valid_pct && !o.seed, o.model_path, " was validated on the rows its labels ",
               "file marks in column '", column, "', not on a random split: --valid-pct and ",
               "--seed have no split to set");
    d.split = data::SplitMode::kValidColumn;
    d.labels.valid_column = column;
    d.preload = o.skip_bad;  // as for the random split below: the rows fridge_train kept
    choice.models_own = true;
    split_note = ", column '" + column + "' as the model was trained";
  } else if (o.split != "all") {
    // --split: rows of fridge_train's random split (EvalOptions::split).
    CUDL_CHECK(mode == "random", o.model_path, " was validated on a "
               "separate labels file (", rec.value("valid_csv", "--valid-csv"), "), not a random "
               "split: score ", o.split == "valid" ? "that file" : "its training labels file",
               " with --split all");
    choice = split_choice(o, rec);
    d.split = data::SplitMode::kRandom;
    d.valid_pct = choice.valid_pct;
    d.seed = choice.seed;
    // Without --skip-bad every image decoded when the model was trained (a bad one stops
    // training), so the split is made before decoding and only its rows are decoded. With
    // --skip-bad training split the images that decoded: so does this.
    d.preload = o.skip_bad;
    std::ostringstream how;
    how << ", valid-pct " << choice.valid_pct << ", seed " << choice.seed
        << (choice.models_own ? " as the model was trained" : "");
    split_note = how.str();
  }
  // An image with none of the classes is a valid case for a multi-label model, except in a
  // split, whose rows must be read as fridge_train read them (--allow-empty or not).
  d.labels.allow_no_labels = m.multi_label && (o.split == "all" || rec.value("allow_empty", false));
  data::ImageData data = data::load_image_data(d);
  int64_t skipped = data.skipped;
  std::shared_ptr<data::ImageDataset> ds = o.split == "valid" ? data.valid : data.train;
  if (choice.models_own) check_split(*data.valid, o, rec);
  if (!d.preload) skipped += ds->preload(o.workers, false);
  CUDL_CHECK(ds->size() > 0, o.csv, ": no images to score (split ", o.split, ")");
  log << "Scoring " << ds->size() << " images of " << o.csv << " (split " << o.split << split_note
      << ")";
  if (skipped) log << ", " << skipped << " bad rows or images skipped";
  log << "\n";

  Predictions p = run(m, ds, o, device, true, threshold);
  const MetricsReport& r = p.report;
  const ClassificationMetrics& best = r.sweep[r.optimal.index];
  log << (m.multi_label ? "At threshold " + fixed(threshold, 2)
                        : std::string("Single-label (the most probable class is predicted)"))
      << ": hamming " << fixed(r.at_threshold.hamming_accuracy, 4) << ", zero-one "
      << fixed(r.at_threshold.zero_one_accuracy, 4) << ", F1 (micro) "
      << fixed(r.at_threshold.f1_micro, 4) << ", loss " << fixed(p.loss, 4) << ", mAP "
      << fixed(r.mean_average_precision, 4) << "\n";
  if (m.multi_label) {
    log << "Optimal threshold " << fixed(r.optimal.threshold, 2) << ": zero-one "
        << fixed(best.zero_one_accuracy, 4) << ", hamming " << fixed(best.hamming_accuracy, 4)
        << "\n";
  }

  write_file_atomically(join_path(o.out, "predictions.csv"),
                        dataset_predictions(m, *ds, p.probs, threshold, true));
  nlohmann::json j;
  j["model"] = o.model_path;
  j["data"] = o.csv;
  j["split"] = o.split;
  if (o.split != "all") j["split_made"] = split_note.substr(2);  // "valid-pct 0.2, seed 10..."
  j["n"] = ds->size();
  j["skipped"] = skipped;
  j["classes"] = m.classes;
  j["loss"] = p.loss;
  compute_mode(o, device).add_json(j);
  j["at_threshold"] = metrics_json(r.at_threshold);
  add_report_json(j, r, m.classes);
  write_file_atomically(join_path(o.out, "metrics.json"), j.dump(2) + "\n");
  log << "Wrote " << join_path(o.out, "metrics.json") << " and predictions.csv\n";
  return r;
}

int64_t predict_images(const EvalOptions& o, std::ostream& log) {
  const auto [device, m, threshold] = open_session(o);
  CUDL_CHECK(!o.predict.empty(), "nothing to predict: give image files or folders");

  // An unlabelled table: the loader then yields all-zero targets, which are ignored.
  auto table = std::make_shared<data::LabelTable>();
  table->classes = m.classes;
  table->multi_label = true;
  std::set<std::filesystem::path> listed;  // each file once, also when given twice (a, a/sub)
  auto first_time = [&](const std::filesystem::path& f) {
    std::error_code ec;
    const std::filesystem::path c = std::filesystem::weakly_canonical(f, ec);
    return listed.insert(ec ? f : c).second;
  };
  for (const std::string& in : o.predict) {
    std::filesystem::path p(in);
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      const std::vector<std::filesystem::path> files = image_files_under(p);
      CUDL_CHECK(!files.empty(), in, ": no .jpg, .jpeg or .png files in this folder or below it");
      for (const auto& f : files) {
        if (!first_time(f)) continue;
        data::LabelledImage item;
        item.filename = f.string();
        item.path = f.string();
        table->items.push_back(item);
      }
    } else {
      CUDL_CHECK(std::filesystem::is_regular_file(p, ec), in, ": no such image file or folder");
      if (!first_time(p)) continue;
      data::LabelledImage item;
      item.filename = in;
      item.path = in;
      table->items.push_back(item);
    }
  }
  data::LoadOptions load;
  load.size = m.size;
  auto ds = std::make_shared<data::ImageDataset>(table, load);
  int64_t skipped = ds->preload(o.workers, o.skip_bad);
  CUDL_CHECK(ds->size() > 0, "no readable images to predict");
  log << "Predicting " << ds->size() << " images with " << o.model_path << " on " << device.str()
      << compute_mode(o, device).text() << " (threshold " << fixed(threshold, 2) << ")";
  if (skipped) log << ", " << skipped << " unreadable images skipped";
  log << "\n";
  Predictions p = run(m, ds, o, device, false, threshold);

  write_file_atomically(join_path(o.out, "predictions.csv"),
                        dataset_predictions(m, *ds, p.probs, threshold, false));
  const int64_t c = static_cast<int64_t>(m.classes.size());
  std::vector<float> probs = p.probs.to_vector<float>();
  const std::vector<uint8_t> predicted = predicted_classes(probs, c, threshold, m.multi_label);
  nlohmann::json j = nlohmann::json::array();
  for (int64_t i = 0; i < ds->size(); ++i) {
    nlohmann::json e;
    e["file"] = ds->item(i).filename;
    e["probabilities"] = nlohmann::json::object();
    e["predicted"] = nlohmann::json::array();
    std::string line;
    for (int64_t k = 0; k < c; ++k) {
      e["probabilities"][m.classes[k]] = probs[i * c + k];
      if (predicted[static_cast<size_t>(i * c + k)]) {
        e["predicted"].push_back(m.classes[k]);
        line += (line.empty() ? "" : " ") + m.classes[k];
      }
    }
    log << ds->item(i).filename << ": " << (line.empty() ? "(nothing)" : line) << "\n";
    j.push_back(e);
  }
  nlohmann::json doc = {{"model", o.model_path}, {"threshold", threshold}, {"classes", m.classes},
                        {"predictions", j}};
  compute_mode(o, device).add_json(doc);
  write_file_atomically(join_path(o.out, "predictions.json"), doc.dump(2) + "\n");
  log << "Wrote " << join_path(o.out, "predictions.csv") << " and predictions.json\n";
  return ds->size();
}

}  // namespace cudl::train
