#include "train/learner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>

#include "data/dataset.h"
#include "data/split.h"
#include "data/demo_data.h"
#include "data/image.h"
#include "data/loader.h"
#include "models/model_io.h"
#include "models/resnet.h"
#include "optim/adam.h"
#include "optim/schedule.h"
#include "tensor/ops.h"
#include "tensor/ops/conv.h"
#include "train/checkpoint_writer.h"
#include "train/files.h"
#include "train/interrupt.h"
#include "train/outputs.h"
#include "train/progress.h"
#include "train/scoring.h"
#include "train/train_step.h"

namespace cudl::train {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// The options that say where the data is (recorded for --resume, not compared by it).
bool is_data_path(const std::string& option) {
  return option == "--csv" || option == "--images" || option == "--valid-csv";
}

std::string absolute_path(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path a = std::filesystem::absolute(path, ec);
  return ec ? path : a.lexically_normal().string();
}

// The train/validation split as recorded in checkpoints and models: its sizes and a hash of the
// validation files (sorted: the same files listed in another order are the same split).
nlohmann::json split_record(const data::ImageData& d) {
  return {{"n_train", d.train->size()}, {"n_valid", d.valid->size()},
          {"valid_files", data::file_set_hash(*d.valid)}};
}

// fastai's SmoothenValue: exponential moving average with bias correction.
struct SmoothLoss {
  double beta = 0.98, mov_avg = 0;
  int64_t n = 0;
  void add(double v) {
    ++n;
    mov_avg = beta * mov_avg + (1 - beta) * v;
  }
  double value() const { return n ? mov_avg / (1 - std::pow(beta, static_cast<double>(n))) : NAN; }
  // Restores the state from a reported value after n updates (resume).
  void restore(double smoothed, int64_t count) {
    n = count;
    mov_avg = count ? smoothed * (1 - std::pow(beta, static_cast<double>(count))) : 0;
  }
};

// ---- history.csv ----
const char* kHistoryHeader =
    "epoch,train_loss,valid_loss,train_hamming,valid_hamming,train_zero_one,valid_zero_one,time";

std::string history_csv(const std::vector<EpochRecord>& h) {
  std::ostringstream o;
  o << kHistoryHeader << "\n" << std::setprecision(9);
  for (const EpochRecord& r : h) {
    o << r.epoch << "," << r.train_loss << "," << r.valid_loss << "," << r.train_hamming << ","
      << r.valid_hamming << "," << r.train_zero_one << "," << r.valid_zero_one << "," << r.seconds
      << "\n";
  }
  return o.str();
}

std::vector<EpochRecord> read_history(const std::string& path) {
  std::vector<EpochRecord> out;
  if (!file_exists(path)) return out;
  std::istringstream in(read_file(path));
  std::string line;
  std::getline(in, line);
  CUDL_CHECK(line == kHistoryHeader, path, ": unexpected header '", line, "'");
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    EpochRecord r;
    char comma;
    std::istringstream f(line);
    f >> r.epoch >> comma >> r.train_loss >> comma >> r.valid_loss >> comma >> r.train_hamming >>
        comma >> r.valid_hamming >> comma >> r.train_zero_one >> comma >> r.valid_zero_one >>
        comma >> r.seconds;
    CUDL_CHECK(!f.fail(), path, ": cannot read the line '", line, "'");
    out.push_back(r);
  }
  return out;
}

// ---- the run ----

struct EpochPass {
  double loss = 0;  // train: smoothed; valid: mean per sample
  MetricsReport metrics;
  Tensor probs;  // valid: (N, C) on the host
};

class Run {
 public:
  // *checkpoint (when given): the checkpoint this run resumed from, then each one it wrote.
  Run(const TrainOptions& o, std::ostream& log, std::string* checkpoint)
      : o_(o),
        log_(log),
        gen_(o.init_seed),
        bar_(o.progress && stderr_is_terminal()),
        checkpoint_(checkpoint),
        checkpoints_([checkpoint](const std::string& path) {
          if (checkpoint) *checkpoint = path;  // on the writer's thread; read after it is joined
        }) {}

  TrainResult go();

 private:
  void set_up_device();
  void load_data();
  void build_model();
  void resume_or_start();
  void refuse_to_replace_an_unfinished_run(const std::string& path) const;
  EpochPass train_epoch(int64_t epoch);
  EpochPass validate();
  void save_checkpoint(int64_t epochs_done);
  void write_outputs(const EpochPass& last_valid, TrainResult& result);
  WeightsMeta meta() const;
  nlohmann::json settings() const;
  ComputeMode compute_mode() const {
    return ComputeMode::of(device_, o_.mixed_precision, o_.channels_last, o_.winograd);
  }
  void compare_settings(const std::string& recorded, const std::string& path);
  std::string out(const std::string& file) const { return join_path(o_.out, file); }

  const TrainOptions& o_;
  std::ostream& log_;
  Generator gen_;
  ProgressBar bar_;
  Device device_;
  std::string data_desc_;  // the labels file
  std::string image_dir_;
  data::ImageData data_;
  nlohmann::json split_;  // the train/validation split: sizes and validation files (load_data)
  std::unique_ptr<data::DataLoader> train_dl_, valid_dl_;
  std::shared_ptr<Sequential> model_;
  std::unique_ptr<AdamW> opt_;
  std::unique_ptr<TrainStep> step_;
  std::string* checkpoint_;       // fit()'s record of this run's checkpoint, or null
  CheckpointWriter checkpoints_;  // declared after what it snapshots; joined in go() and on exit
  bool step_mode_logged_ = false;
  std::unique_ptr<Schedule> schedule_;
  LossKind loss_kind_ = LossKind::kBCEWithLogits;
  SmoothLoss smooth_;
  int64_t iteration_ = 0;
  int64_t start_epoch_ = 0;
  std::vector<EpochRecord> history_;
  Clock::time_point t0_ = Clock::now();
};

void Run::set_up_device() {
  if (o_.threads > 0) set_num_threads(o_.threads);
  device_ = Device::parse(o_.device);
  // cuDNN: measure the algorithms once per shape, unless results must be reproducible: then
  // cuDNN's heuristics pick among the algorithms that give the same bits every run.
  set_conv_benchmark(o_.benchmark && !o_.deterministic);
  set_conv_deterministic(o_.deterministic);
  // PyTorch's defaults: TF32 allowed in cuDNN convolutions, not in matrix products.
  set_conv_allow_tf32(o_.tf32);
  set_cpu_conv_path(o_.winograd ? CpuConvPath::kWinograd : CpuConvPath::kAuto);
}

void Run::load_data() {
  data::ImageDataOptions d;
  std::string dir = o_.data_dir;
  if (dir.empty()) {
    dir = out("demo_data");
    data::DemoDataOptions demo;
    demo.num_images = o_.demo_images;
    demo.seed = o_.demo_seed;
    demo.height = o_.demo_height;
    demo.width = (o_.demo_height * 3 + 2) / 4;
    // demo.json records what the folder holds: other --demo-images or --demo-height write it
    // again (it is this program's own output), the same ones reuse it. A folder without the
    // record (written by an older version) is written again too.
    const nlohmann::json want = {{"images", demo.num_images}, {"width", demo.width},
                                 {"height", demo.height}, {"seed", demo.seed}};
    const std::string record = join_path(dir, "demo.json");
    bool reuse = file_exists(join_path(dir, "labels.csv"));
    if (reuse) {
      const nlohmann::json had = file_exists(record)
                                     ? nlohmann::json::parse(read_file(record), nullptr, false)
                                     : nlohmann::json();
      if (had != want) {
        log_ << "The demo data in " << dir << " is not of these --demo-images and --demo-height "
             << "(or has no demo.json): writing it again\n";
        std::filesystem::remove_all(dir);
        reuse = false;
      }
    }
    if (!reuse) {
      log_ << "No --data given: writing the built-in demo data (" << o_.demo_images
           << " photo-like images of " << demo.width << "x" << demo.height << ", 4 classes) to "
           << dir << std::flush;
      const auto t = Clock::now();
      data::write_demo_data(dir, demo);
      write_file_atomically(record, want.dump() + "\n");
      log_ << " in " << fixed(seconds_since(t), 1) << " s\n";
    } else {
      log_ << "No --data given: using the demo data in " << dir << "\n";
    }
  }
  d.csv_path = o_.csv.empty() ? join_path(dir, "labels.csv") : o_.csv;
  d.image_dir = o_.images.empty() ? join_path(dir, "images") : o_.images;
  d.labels.label_delimiter = o_.label_delim;
  d.labels.skip_bad = o_.skip_bad;
  d.labels.allow_no_labels = o_.allow_empty;
  d.load.size = o_.size;
  d.valid_pct = o_.valid_pct;
  d.seed = o_.seed;
  CUDL_CHECK(o_.valid_csv.empty() || o_.valid_col.empty(),
             "a validation labels file and a validation column are two splits: give one");
  if (!o_.valid_csv.empty()) {
    d.split = data::SplitMode::kValidCsv;
    d.valid_csv = o_.valid_csv;
  } else if (!o_.valid_col.empty()) {
    d.split = data::SplitMode::kValidColumn;
  }
  // Only a column split reads a validation column (an is_valid column of other values is data).
  d.labels.valid_column = o_.valid_col;
  const auto t = Clock::now();
  data_ = data::load_image_data(d);
  CUDL_CHECK(data_.train->size() >= o_.bs, "only ", data_.train->size(),
             " training images for a batch size of ", o_.bs,
             " (the last incomplete batch is dropped, so no training batch would remain); use a "
             "smaller --bs");
  CUDL_CHECK(data_.valid->size() > 0, "the validation set is empty; ",
             !o_.valid_col.empty()
                 ? str("no ", data_.skipped > 0 ? "usable " : "", "row of ", d.csv_path,
                       " is marked true in its '", o_.valid_col, "' column",
                       data_.skipped > 0 ? str(" (", data_.skipped, " bad rows or images skipped)")
                                         : std::string())
                 : std::string(o_.valid_csv.empty() ? "raise --valid-pct" : "no usable rows"));
  CUDL_CHECK(data_.multi_label || data_.classes.size() >= 2, d.csv_path, ": every image has the ",
             "one class '", data_.classes.front(), "', so there is nothing to tell apart: a ",
             "classifier needs two classes or more, or images with none of them (rows with an ",
             "empty labels field, read so with --allow-empty)");
  if (!o_.valid_csv.empty()) {
    // A validation file that lists training images scores what the model memorised.
    std::set<std::string> trained;
    for (int64_t i = 0; i < data_.train->size(); ++i) trained.insert(data_.train->item(i).path);
    int64_t both = 0;
    for (int64_t i = 0; i < data_.valid->size(); ++i) both += trained.count(data_.valid->item(i).path);
    if (both > 0)
      log_warning(str(both, " of the ", data_.valid->size(), " validation images of ", o_.valid_csv,
                      " are training images of ", d.csv_path, " too: their validation scores ",
                      "measure what the model memorised, not how it does on new images"));
  }
  split_ = split_record(data_);
  data_desc_ = d.csv_path;
  image_dir_ = d.image_dir;
  log_ << "Data: " << d.csv_path << ": " << data_.train->size() << " training and "
       << data_.valid->size() << " validation images, " << data_.classes.size() << " classes (";
  for (size_t i = 0; i < data_.classes.size(); ++i) log_ << (i ? ", " : "") << data_.classes[i];
  log_ << "), " << (data_.multi_label ? "multi-label" : "single-label") << "; decoded and resized to "
       << o_.size << "x" << o_.size << " in " << fixed(seconds_since(t), 1) << " s";
  if (data_.skipped) log_ << "; " << data_.skipped << " bad rows skipped";
  log_ << "\n";
  loss_kind_ = data_.multi_label ? LossKind::kBCEWithLogits : LossKind::kCrossEntropy;

  data::DataLoaderOptions tl;
  tl.batch_size = o_.bs;
  tl.shuffle = true;
  tl.drop_last = true;
  tl.seed = o_.seed;
  tl.num_workers = o_.workers;
  tl.device = device_;
  data::DataLoaderOptions vl = tl;  // validation: in order, everything, no augmentation
  vl.shuffle = false;
  vl.drop_last = false;
  if (o_.augment) {
    tl.augment.flip = true;
    tl.augment.brightness = 0.1f;
    tl.augment.contrast = 0.1f;
  }
  train_dl_ = std::make_unique<data::DataLoader>(data_.train, tl);
  valid_dl_ = std::make_unique<data::DataLoader>(data_.valid, vl);
}

void Run::build_model() {
  const models::Arch arch = models::parse_arch(o_.arch);
  model_ = models::notebook_model(arch, static_cast<int64_t>(data_.classes.size()), &gen_);
  if (!o_.weights.empty()) {
    // A whole model (body.* and head.*) loads whole when its head predicts this data's classes
    // in this order; otherwise, and for a file of body.* tensors alone, its body loads and the
    // head starts afresh (as fastai's learner on new classes). Anything else is a torchvision
    // backbone (conv1.*, layer1.*, ..., fc.* left out).
    const WeightsFile file = load_weights(o_.weights);  // read once: inspected, then loaded
    auto starts = [](const std::string& name, const char* prefix) { return name.rfind(prefix, 0) == 0; };
    const bool has_head = std::any_of(file.tensors.begin(), file.tensors.end(),
                                      [&](const auto& t) { return starts(t.first, "head."); });
    const bool all_body = !file.tensors.empty() &&
                          std::all_of(file.tensors.begin(), file.tensors.end(), [&](const auto& t) {
                            return starts(t.first, "body.") || starts(t.first, "head.");
                          });
    const bool other_classes = file.meta.class_names && *file.meta.class_names != data_.classes;
    if (has_head && !other_classes) {
      models::load_weights_into(*model_, file, o_.weights);
      log_ << "Weights: the whole model from " << o_.weights << "\n";
    } else if (all_body) {
      models::load_body_into(*model_, file, o_.weights);
      log_ << "Weights: " << o_.arch << " body from " << o_.weights << " (head initialised";
      if (has_head) {
        log_ << ": its head predicts ";
        for (size_t i = 0; i < file.meta.class_names->size(); ++i)
          log_ << (i ? ", " : "") << (*file.meta.class_names)[i];
        log_ << ", not this data's classes in this order";
      }
      log_ << ")\n";
    } else {
      models::load_backbone_into(*model_, file, o_.weights);
      log_ << "Weights: " << o_.arch << " body from " << o_.weights << " (head initialised)\n";
    }
  } else {
    log_ << "Weights: none (" << o_.arch << " trained from scratch; give --weights for ImageNet)\n";
  }
  model_->to(device_);
  if (o_.freeze_body) model_->freeze("body");

  ParamGroup group;
  for (const auto& [name, p] : model_->named_parameters()) {
    if (!p.requires_grad()) continue;
    group.params.push_back(p);
    group.names.push_back(name);
  }
  AdamWOptions ao;
  ao.lr = o_.lr;
  ao.beta1 = 0.9;
  ao.beta2 = 0.99;
  ao.eps = 1e-8;
  ao.weight_decay = o_.wd;
  opt_ = std::make_unique<AdamW>(std::vector<ParamGroup>{group}, ao);
  const int64_t total = train_dl_->num_batches() * o_.epochs;
  if (o_.schedule == "constant") {
    schedule_ = std::make_unique<ConstantSchedule>(o_.lr);
  } else if (o_.schedule == "one-cycle") {
    schedule_ = std::make_unique<OneCycleSchedule>(o_.lr, total);
  } else {
    CUDL_THROW("unknown schedule '", o_.schedule, "' (constant or one-cycle)");
  }
  TrainStepOptions so;
  so.cuda_graph = o_.cuda_graph;
  so.mixed_precision = o_.mixed_precision;
  so.channels_last = o_.channels_last;
  step_ = std::make_unique<TrainStep>(
      *model_, *opt_,
      [this](const Tensor& logits, const Tensor& targets) {
        return compute_loss(loss_kind_, logits, targets);
      },
      std::vector<Generator*>{&gen_}, device_, so);
  int64_t trainable = 0;
  for (const Tensor& p : group.params) trainable += p.numel();
  log_ << "Model: " << o_.arch << " body + fastai head, " << trainable << " trainable parameters"
       << (o_.freeze_body ? " (body frozen)" : "") << ", on " << device_.str()
       << (device_.is_cpu() ? " (" + std::to_string(get_num_threads()) +
                                  (get_num_threads() == 1 ? " thread)" : " threads)")
                            : "")
       << "\n";
  log_ << "Training: " << o_.epochs << (o_.epochs == 1 ? " epoch of " : " epochs of ")
       << train_dl_->num_batches() << (train_dl_->num_batches() == 1 ? " batch of " : " batches of ")
       << o_.bs << ", AdamW lr " << o_.lr << " wd " << o_.wd << ", "
       << o_.schedule << " schedule, " << toString(loss_kind_) << " loss"
       << (o_.augment ? ", augmentation (flips, brightness/contrast)" : "")
       << compute_mode().text() << "\n";
  const std::string slower = compute_mode().slower_options();
  if (!slower.empty()) log_warning(slower);
}

WeightsMeta Run::meta() const {
  WeightsMeta m;
  m.architecture = "fastai_" + o_.arch;
  m.class_names = data_.classes;
  m.input_size = std::vector<int64_t>{3, o_.size, o_.size};
  data::Normalization n;
  m.norm_mean = std::vector<double>{n.mean[0], n.mean[1], n.mean[2]};
  m.norm_std = std::vector<double>{n.std[0], n.std[1], n.std[2]};
  m.threshold = o_.threshold;
  m.source = "fridge_train on " + data_desc_;
  m.task = data_.multi_label ? "multi_label" : "single_label";
  // The split, for fridge_eval --split: how it was made and which validation files it gave.
  nlohmann::json sp = split_;
  if (!o_.valid_csv.empty()) {
    sp["mode"] = "valid_csv";
    sp["valid_csv"] = o_.valid_csv;
  } else if (!o_.valid_col.empty()) {
    sp["mode"] = "valid_column";
    sp["valid_column"] = o_.valid_col;
  } else {
    sp["mode"] = "random";
    sp["valid_pct"] = o_.valid_pct;
    sp["seed"] = o_.seed;
  }
  sp["skip_bad"] = o_.skip_bad;
  sp["allow_empty"] = o_.allow_empty;
  m.split = sp.dump();
  return m;
}

// What a run's results depend on beyond the model and the optimiser's state: recorded in each
// checkpoint, compared on --resume (compare_settings), named by the options that set them.
// "split" is the train/validation split itself (split_record), so that a resumed run never
// validates on images it trained on, whatever options or paths produced the split.
nlohmann::json Run::settings() const {
  nlohmann::json s = {
      {"split", split_},
      {"--seed", o_.seed}, {"--size", o_.size}, {"--bs", o_.bs}, {"--epochs", o_.epochs},
      {"--lr", o_.lr}, {"--wd", o_.wd}, {"--schedule", o_.schedule}, {"--augment", o_.augment},
      {"--freeze-body", o_.freeze_body}, {"--device", device_.str()},
      {"--mixed-precision", o_.mixed_precision}, {"--channels-last", o_.channels_last},
      {"--deterministic", o_.deterministic}, {"--threshold", o_.threshold}};
  if (!o_.valid_col.empty())
    s["--valid-col"] = o_.valid_col;
  else if (o_.valid_csv.empty())
    s["--valid-pct"] = o_.valid_pct;
  s["--arch"] = o_.arch;
  s["--label-delim"] = std::string(1, o_.label_delim);
  s["--skip-bad"] = o_.skip_bad;
  s["--allow-empty"] = o_.allow_empty;
  if (!o_.data_dir.empty()) {  // where the data is, for a --resume without data options
    s["--csv"] = absolute_path(data_desc_);
    s["--images"] = absolute_path(image_dir_);
    if (!o_.valid_csv.empty()) s["--valid-csv"] = absolute_path(o_.valid_csv);
  } else {  // which demo data (a resume writes it again when its demo.json differs)
    s["--demo-images"] = o_.demo_images;
    s["--demo-height"] = o_.demo_height;
  }
  if (device_.is_cpu()) {
    s["--winograd"] = o_.winograd;
    s["--threads"] = get_num_threads();  // the CPU's reductions depend on it
  } else {
    s["--no-tf32"] = !o_.tf32;
    s["--no-benchmark"] = !o_.benchmark;
  }
  return s;
}

// --resume: a checkpoint of another split is refused (its validation images would be trained
// on), and so is one of a run with another --freeze-body (its optimiser state is for other
// parameters); every other setting that differs from the checkpoint's run is named (more epochs
// or a lower lr may be meant).
void Run::compare_settings(const std::string& recorded, const std::string& path) {
  if (recorded.empty()) {
    log_ << "Note: " << path << " does not record its run's settings; they are not compared\n";
    return;
  }
  const nlohmann::json was = nlohmann::json::parse(recorded, nullptr, /*allow_exceptions=*/false);
  CUDL_CHECK(was.is_object(), path, ": its 'settings' attribute is not a JSON object");
  const nlohmann::json now = settings();
  const std::string afresh =
      "; or start a new run from its weights (--weights " + path + ", without --resume)";
  if (was.contains("split") && was["split"].is_object()) {
    // Only what both record is compared: a later version may record more.
    const nlohmann::json& a = was["split"];
    const nlohmann::json& b = now["split"];
    std::string differs;
    auto counts = [](const nlohmann::json& x) {
      return x.value("n_train", nlohmann::json()).dump() + " training and " +
             x.value("n_valid", nlohmann::json()).dump() + " validation images";
    };
    if ((a.contains("n_train") && a["n_train"] != b["n_train"]) ||
        (a.contains("n_valid") && a["n_valid"] != b["n_valid"]))
      differs = counts(a) + " there, " + counts(b) + " here";
    else if (a.contains("valid_files") && a["valid_files"] != b["valid_files"])
      differs = "other validation images, as many";
    CUDL_CHECK(differs.empty(), path, " was trained on another train/validation split (", differs,
               "): resuming would validate on images it trained on. Resume with the data and ",
               was.contains("--valid-col")   ? "the --csv and --valid-col"
               : was.contains("--valid-pct") ? "the --seed and --valid-pct"
                                             : "the --csv and --valid-csv",
               " of that run", afresh);
  }
  if (was.contains("--freeze-body") && was["--freeze-body"] != now["--freeze-body"])
    CUDL_THROW(path, " was written by a run ", was["--freeze-body"].get<bool>() ? "with" : "without",
               " --freeze-body: its optimiser state is for other parameters. Resume ",
               was["--freeze-body"].get<bool>() ? "with" : "without", " it", afresh);
  std::string changed;
  for (const auto& [key, value] : now.items()) {
    // Where the data is does not matter, the split it gives does (compared above).
    if (key == "split" || is_data_path(key) || !was.contains(key) || was[key] == value) continue;
    changed += (changed.empty() ? "" : ", ") + key + " " + value.dump() + " (was " +
               was[key].dump() + ")";
  }
  if (!changed.empty())
    log_ << "Note: resuming with settings other than the checkpoint's run had: " << changed << "\n";
}

void Run::save_checkpoint(int64_t epochs_done) {
  Checkpoint c;
  c.settings = settings().dump();
  c.model = models::named_state(*model_);
  for (auto& [name, t] : opt_->state_dict()) c.optimizer.emplace_back(name, t);
  c.meta = meta();
  c.epoch = epochs_done;
  c.rng_seed = gen_.seed();
  c.rng_offset = gen_.offset();
  checkpoints_.submit(out("checkpoint.h5"), c);  // written while training goes on
}

void Run::resume_or_start() {
  const std::string path = out("checkpoint.h5");
  if (!o_.resume) return;
  if (!file_exists(path)) {
    log_ << "--resume: no checkpoint in " << o_.out << ", starting from the beginning\n";
    return;
  }
  Checkpoint c = load_checkpoint(path);
  if (checkpoint_) *checkpoint_ = path;  // before the writer's thread first starts
  const std::string arch = c.meta.architecture.value_or("");
  CUDL_CHECK(arch == "fastai_" + o_.arch, path, ": the checkpoint is for ",
             arch.empty() ? "an unknown architecture" : arch, ", not fastai_", o_.arch,
             arch.rfind("fastai_", 0) == 0 ? ": give --arch " + arch.substr(7) + " to resume it" : "");
  CUDL_CHECK(c.meta.class_names && *c.meta.class_names == data_.classes, path,
             ": the checkpoint's classes differ from the data's");
  compare_settings(c.settings, path);
  models::load_named(*model_, c.model);
  std::vector<NamedTensor> state(c.optimizer.begin(), c.optimizer.end());
  opt_->load_state_dict(state);
  gen_.manual_seed(c.rng_seed);
  gen_.set_offset(c.rng_offset);
  start_epoch_ = c.epoch;
  CUDL_CHECK(start_epoch_ <= o_.epochs, path, " has already trained ", start_epoch_, " epochs, more "
             "than --epochs ", o_.epochs, ": give --epochs ", start_epoch_, " or more to continue it");
  history_ = read_history(out("history.csv"));
  // The history may be ahead of the checkpoint: the process died between the two writes, or
  // while newer checkpoints were still waiting to be written (CheckpointWriter keeps only the
  // latest). Those epochs run again.
  if (static_cast<int64_t>(history_.size()) > start_epoch_) history_.resize(start_epoch_);
  CUDL_CHECK(static_cast<int64_t>(history_.size()) == start_epoch_, out("history.csv"), " has ",
             history_.size(), " epochs but the checkpoint ", start_epoch_);
  iteration_ = start_epoch_ * train_dl_->num_batches();
  if (!history_.empty()) smooth_.restore(history_.back().train_loss, iteration_);
  log_ << "Resuming after epoch " << start_epoch_ << " of " << o_.epochs << " from " << path << "\n";
}

// A new run into a folder whose checkpoint belongs to a run that stopped before its last epoch
// (killed, crashed) would overwrite that progress with its first epoch: refused, saying how to
// continue it or start over. A finished run's files are replaced, as in fastai.
void Run::refuse_to_replace_an_unfinished_run(const std::string& path) const {
  if (!file_exists(path)) return;
  Checkpoint c;
  try {
    c = load_checkpoint(path, /*tensors=*/false);
  } catch (const std::exception&) {
    return;  // not a checkpoint of ours (or unreadable): nothing to continue
  }
  const nlohmann::json s = nlohmann::json::parse(c.settings, nullptr, /*allow_exceptions=*/false);
  if (!s.is_object() || !s.contains("--epochs") || !s["--epochs"].is_number_integer()) return;
  const int64_t planned = s["--epochs"].get<int64_t>();
  CUDL_CHECK(c.epoch >= planned, path, " holds an unfinished run (epoch ", c.epoch, " of ", planned,
             "), which this run would overwrite: add --resume to continue it (with its options), "
             "or delete the checkpoint or choose another --out to start over");
}

EpochPass Run::train_epoch(int64_t epoch) {
  model_->train();
  Scorer acc(static_cast<int64_t>(data_.classes.size()), device_, data_.multi_label);
  train_dl_->start_epoch(epoch);
  bar_.start("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o_.epochs) + " train",
             train_dl_->num_batches());
  data::Batch b;
  int64_t done = 0;
  while (train_dl_->next(b)) {
    stop_if_interrupted();
    schedule_->apply(*opt_, iteration_++);
    TrainStep::Result step = step_->run(b.images, b.targets);
    const double l = step.loss.item();
    CUDL_CHECK(std::isfinite(l), "the training loss became ", l, " at epoch ", epoch + 1,
               ", batch ", done + 1, "; lower --lr (then --resume continues from this run's last "
               "checkpoint in ", o_.out, ", if it wrote one; delete it to start over)");
    smooth_.add(l);
    acc.append(step.logits, b.targets);
    bar_.update(++done, "loss " + fixed(smooth_.value(), 4));
  }
  bar_.finish();
  if (device_.is_cuda() && o_.cuda_graph && !step_->graphed() && !step_mode_logged_) {
    step_mode_logged_ = true;
    log_ << "Warning: training steps run eagerly, the CUDA graph " << step_->reason() << "\n";
  }
  EpochPass r;
  r.loss = smooth_.value();
  r.metrics = acc.compute(o_.threshold);
  return r;
}

EpochPass Run::validate() {
  model_->eval();
  NoGradGuard no_grad;
  Scorer acc(static_cast<int64_t>(data_.classes.size()), device_, data_.multi_label);
  valid_dl_->start_epoch(0);
  bar_.start("validation", valid_dl_->num_batches());
  data::Batch b;
  double loss_sum = 0;
  int64_t n = 0, done = 0;
  while (valid_dl_->next(b)) {
    stop_if_interrupted();
    Tensor logits;
    {
      AutocastGuard autocast(o_.mixed_precision);
      // bfloat16 under autocast
      logits = (*model_)(model_input(b.images, o_.channels_last)).to(kFloat32);
    }
    loss_sum += compute_loss(loss_kind_, logits, b.targets).item() * static_cast<double>(b.size());
    n += b.size();
    acc.append(logits, b.targets);
    bar_.update(++done);
  }
  bar_.finish();
  EpochPass r;
  r.loss = loss_sum / static_cast<double>(n);
  r.metrics = acc.compute(o_.threshold, Metric::kZeroOneAccuracy);
  r.probs = acc.probabilities().to(Device::cpu()).contiguous();
  return r;
}

// Encodes a cached crop of a dataset item as a JPEG for the report.
std::vector<uint8_t> thumbnail(const data::ImageDataset& ds, int64_t i) {
  auto img = ds.image(i);
  const int s = ds.image_size();
  data::Image pic(s, s);
  for (int y = 0; y < s; ++y)
    std::copy_n(img->crop() + static_cast<size_t>(y) * img->stride(), static_cast<size_t>(s) * 3,
                pic.pixels.data() + static_cast<size_t>(y) * s * 3);
  data::JpegEncodeOptions jo;
  jo.quality = 85;
  return data::encode_jpeg(pic, jo);
}

void Run::write_outputs(const EpochPass& v, TrainResult& result) {
  const auto& classes = data_.classes;
  const int64_t c = static_cast<int64_t>(classes.size());
  const MetricsReport& m = v.metrics;

  // model.h5
  save_weights(out("model.h5"), models::named_state(*model_), meta());

  // predictions.csv, and the validation grid of the report
  std::vector<float> p = v.probs.to_vector<float>();
  const std::vector<uint8_t> predicted =
      predicted_classes(p, c, m.at_threshold.threshold, data_.multi_label);
  std::vector<std::string> filenames;
  std::vector<std::vector<std::string>> truth;
  std::vector<ReportImage> valid_images;
  for (int64_t i = 0; i < data_.valid->size(); ++i) {
    const data::LabelledImage& item = data_.valid->item(i);
    filenames.push_back(item.filename);
    truth.emplace_back();
    std::vector<bool> is_true(c, false);
    for (int id : item.label_ids) {
      is_true[id] = true;
      truth.back().push_back(classes[id]);
    }
    if (valid_images.size() >= 36) continue;
    ReportImage ri;
    ri.caption = item.filename;
    for (int64_t j = 0; j < c; ++j) {
      const float pj = p[i * c + j];
      const bool yes = predicted[static_cast<size_t>(i * c + j)] != 0;
      if (yes || is_true[j]) {
        ri.labels.push_back(classes[j] + " " + fixed(pj, 2));
        ri.marks.push_back(yes && is_true[j] ? 1 : yes ? 0 : 2);
      }
    }
    ri.jpeg = thumbnail(*data_.valid, i);
    valid_images.push_back(std::move(ri));
  }
  write_file_atomically(out("predictions.csv"),
                        predictions_csv(classes, filenames, p, predicted, &truth));

  // metrics.json
  nlohmann::json j;
  j["device"] = device_.str();
  compute_mode().add_json(j);
  j["train_step"] = step_->graphed() ? "cuda graph" : "eager (" + step_->reason() + ")";
  j["arch"] = o_.arch;
  j["classes"] = classes;
  j["multi_label"] = data_.multi_label;
  j["loss"] = toString(loss_kind_);
  j["n_train"] = data_.train->size();
  j["n_valid"] = data_.valid->size();
  j["epochs"] = o_.epochs;
  j["options"] = {{"data", o_.data_dir.empty() ? "demo" : o_.data_dir}, {"size", o_.size},
                  {"bs", o_.bs}, {"lr", o_.lr}, {"wd", o_.wd}, {"schedule", o_.schedule},
                  {"seed", o_.seed}, {"weights", o_.weights}, {"freeze_body", o_.freeze_body}};
  if (!o_.valid_csv.empty())
    j["options"]["valid_csv"] = o_.valid_csv;
  else if (!o_.valid_col.empty())
    j["options"]["valid_col"] = o_.valid_col;
  else
    j["options"]["valid_pct"] = o_.valid_pct;
  j["history"] = nlohmann::json::array();
  for (const EpochRecord& r : history_) {
    j["history"].push_back({{"epoch", r.epoch}, {"train_loss", r.train_loss},
                            {"valid_loss", r.valid_loss}, {"train_hamming", r.train_hamming},
                            {"valid_hamming", r.valid_hamming}, {"train_zero_one", r.train_zero_one},
                            {"valid_zero_one", r.valid_zero_one}, {"seconds", r.seconds}});
  }
  j["valid"] = metrics_json(m.at_threshold);
  j["valid"]["loss"] = v.loss;
  add_report_json(j, m, classes);
  j["seconds_total"] = seconds_since(t0_);
  j["note"] = data_.multi_label
                  ? "thresholds apply to probabilities (sigmoid of the logits): a label is "
                    "predicted when its probability is strictly above the threshold"
                  : "single-label: probabilities are the softmax of the logits and the most "
                    "probable class is predicted, whatever the threshold";
  write_file_atomically(out("metrics.json"), j.dump(2) + "\n");

  // report.html
  ReportData rd;
  rd.title = "cudl fridge_train report";
  rd.classes = classes;
  rd.history = history_;
  rd.threshold = o_.threshold;
  // The threshold chart only where thresholds decide (multi-label).
  for (size_t k = 0; data_.multi_label && k < m.sweep.size(); ++k) {
    rd.sweep.thresholds.push_back(m.sweep[k].threshold);
    rd.sweep.hamming.push_back(m.sweep[k].hamming_accuracy);
    rd.sweep.zero_one.push_back(m.sweep[k].zero_one_accuracy);
  }
  rd.sweep.best_threshold = m.optimal.threshold;
  rd.sweep.best_zero_one = m.sweep[m.optimal.index].zero_one_accuracy;
  rd.sweep.best_hamming = m.sweep[m.optimal.index].hamming_accuracy;
  rd.summary = {{"data", data_desc_},
                {"images", std::to_string(data_.train->size()) + " training, " +
                               std::to_string(data_.valid->size()) + " validation"},
                {"classes", [&] {
                   std::string s;
                   for (const auto& cl : classes) s += (s.empty() ? "" : ", ") + cl;
                   return s;
                 }()},
                {"model", o_.arch + " + fastai head" + (o_.weights.empty() ? " (from scratch)" : ", weights " + o_.weights)},
                {"training", std::to_string(o_.epochs) + " epochs, batch " + std::to_string(o_.bs) +
                                 ", AdamW lr " + fixed(o_.lr, 6) + ", " + o_.schedule + ", size " +
                                 std::to_string(o_.size)},
                {"device", device_.str()},
                {"validation at threshold " + fixed(o_.threshold, 2),
                 "hamming " + fixed(m.at_threshold.hamming_accuracy, 4) + ", zero-one " +
                     fixed(m.at_threshold.zero_one_accuracy, 4) + ", loss " + fixed(v.loss, 4)},
                {"mean average precision", fixed(m.mean_average_precision, 4)},
                {"total time", fixed(seconds_since(t0_), 1) + " s"}};
  for (int64_t i = 0; i < std::min<int64_t>(12, data_.train->size()); ++i) {
    const data::LabelledImage& item = data_.train->item(i);
    ReportImage ri;
    ri.caption = item.filename;
    ri.labels = item.labels;
    ri.jpeg = thumbnail(*data_.train, i);
    rd.train_images.push_back(std::move(ri));
  }
  rd.valid_images = std::move(valid_images);
  write_file_atomically(out("report.html"), render_report(rd));
  result.valid = m;
}

namespace {

std::string epoch_row(const EpochRecord& r) {
  return epoch_table_row({std::to_string(r.epoch), fixed(r.train_loss, 6),
                          fixed(r.valid_loss, 6), fixed(r.train_hamming, 6),
                          fixed(r.valid_hamming, 6), fixed(r.train_zero_one, 6),
                          fixed(r.valid_zero_one, 6), fixed(r.seconds, 1) + "s"});
}

}  // namespace

TrainResult Run::go() {
  make_dirs(o_.out);
  if (!o_.resume) refuse_to_replace_an_unfinished_run(out("checkpoint.h5"));  // before any work
  set_up_device();
  load_data();
  build_model();
  resume_or_start();

  log_ << "\n"
       << epoch_table_row({"epoch", "train_loss", "valid_loss", "train_hamming", "valid_hamming",
                           "train_zero_one", "valid_zero_one", "time"})
       << "\n";
  for (const EpochRecord& r : history_) log_ << epoch_row(r) << " (resumed)\n";
  EpochPass last_valid;
  bool have_valid = false;
  for (int64_t epoch = start_epoch_; epoch < o_.epochs; ++epoch) {
    const auto t = Clock::now();
    EpochPass tr = train_epoch(epoch);
    last_valid = validate();
    have_valid = true;
    EpochRecord r;
    r.epoch = static_cast<int>(epoch + 1);
    r.train_loss = tr.loss;
    r.valid_loss = last_valid.loss;
    r.train_hamming = tr.metrics.at_threshold.hamming_accuracy;
    r.valid_hamming = last_valid.metrics.at_threshold.hamming_accuracy;
    r.train_zero_one = tr.metrics.at_threshold.zero_one_accuracy;
    r.valid_zero_one = last_valid.metrics.at_threshold.zero_one_accuracy;
    r.seconds = seconds_since(t);
    history_.push_back(r);
    // History first: if the process dies before the checkpoint, resume drops the extra row.
    write_file_atomically(out("history.csv"), history_csv(history_));
    save_checkpoint(epoch + 1);
    log_ << epoch_row(r) << std::endl;
  }
  if (!have_valid) last_valid = validate();  // resumed after the last epoch

  TrainResult result;
  const MetricsReport& m = last_valid.metrics;
  const ClassificationMetrics& best = m.sweep[m.optimal.index];
  if (data_.multi_label) {
    log_ << "\nValidation at threshold " << fixed(o_.threshold, 2) << " (on probabilities): hamming "
         << fixed(m.at_threshold.hamming_accuracy, 4) << ", zero-one "
         << fixed(m.at_threshold.zero_one_accuracy, 4) << ", mAP "
         << fixed(m.mean_average_precision, 4) << "\n";
    log_ << "Optimal threshold (first best zero-one accuracy over 0.00, 0.05, ..., 1.00): "
         << fixed(m.optimal.threshold, 2) << " -> zero-one " << fixed(best.zero_one_accuracy, 4)
         << ", hamming " << fixed(best.hamming_accuracy, 4) << "\n";
  } else {
    log_ << "\nValidation (single-label: the most probable class is predicted): accuracy "
         << fixed(m.at_threshold.zero_one_accuracy, 4) << ", hamming "
         << fixed(m.at_threshold.hamming_accuracy, 4) << ", mAP "
         << fixed(m.mean_average_precision, 4) << "\n";
  }
  write_outputs(last_valid, result);
  checkpoints_.wait();
  result.history = history_;
  result.seconds = seconds_since(t0_);
  result.out_dir = o_.out;
  log_ << "Wrote " << out("model.h5") << ", checkpoint.h5, history.csv, metrics.json, "
       << "predictions.csv and report.html in " << o_.out << " (" << fixed(result.seconds, 1)
       << " s in all)\n";
  return result;
}

}  // namespace

TrainResult fit(const TrainOptions& options, std::ostream& log, std::string* checkpoint) {
  if (checkpoint) checkpoint->clear();
  CUDL_CHECK(options.epochs >= 1, "epochs must be at least 1, got ", options.epochs);
  CUDL_CHECK(options.bs >= 2, "the batch size must be at least 2 (BatchNorm needs two samples in "
                              "training), got ", options.bs);
  Run run(options, log, checkpoint);
  return run.go();
}

std::vector<std::string> recorded_options(const std::string& out_dir,
                                          const std::function<bool(const std::string&)>& is_option,
                                          const std::function<bool(const std::string&)>& given) {
  const std::string path = join_path(out_dir, "checkpoint.h5");
  if (!file_exists(path)) return {};
  const std::string recorded = load_checkpoint(path, /*tensors=*/false).settings;
  const nlohmann::json was = nlohmann::json::parse(recorded, nullptr, /*allow_exceptions=*/false);
  if (!was.is_object()) return {};  // the resume names the problem (compare_settings)
  // A --valid-csv given alone changes the split only (below), not where the training data is.
  const bool data_given = given("--data") || given("--csv") || given("--images");
  std::vector<std::string> args;
  for (const auto& [option, value] : was.items()) {
    if (option.rfind("--", 0) != 0 || !is_option(option) || given(option)) continue;
    if (is_data_path(option) && data_given) continue;
    // The split: one of --valid-pct, --valid-csv and --valid-col; one given replaces the run's.
    const bool split_option =
        option == "--valid-pct" || option == "--valid-csv" || option == "--valid-col";
    if (split_option && (given("--valid-pct") || given("--valid-csv") || given("--valid-col")))
      continue;
    if (value.is_boolean()) {
      // Flags; --winograd and --augment are on/off pairs (--no-winograd, --no-augment).
      const bool pair = option == "--winograd" || option == "--augment";
      if (value.get<bool>())
        args.push_back(option);
      else if (pair)
        args.push_back("--no-" + option.substr(2));
    } else if (value.is_string()) {
      args.insert(args.end(), {option, value.get<std::string>()});
    } else if (value.is_number()) {
      args.insert(args.end(), {option, value.dump()});
    }
  }
  return args;
}

std::string demo_description() {
  return "Without --data or --csv, fridge_train writes a deterministic demo dataset (photo-like images "
         "of cans, cartons, milk and water bottles on textured backgrounds, several per image) "
         "into OUT/demo_data and trains on it with demo defaults.";
}

}  // namespace cudl::train
