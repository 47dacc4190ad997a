#include "data/dataset.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "tensor/error.h"

namespace cudl::data {

struct ImageDataset::Cache {
  std::mutex mutex;
  std::vector<std::shared_ptr<const ResizedImage>> slots;  // indexed by table row
};

namespace {
std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const Error& err) {
    return err.message();
  } catch (const std::exception& err) {
    return err.what();
  } catch (...) {
    return "unknown error";
  }
}
}  // namespace

ImageDataset::ImageDataset(std::shared_ptr<const LabelTable> table, std::vector<int64_t> rows,
                           const LoadOptions& options)
    : table_(std::move(table)),
      rows_(std::move(rows)),
      options_(options),
      cache_(std::make_shared<Cache>()) {
  CUDL_CHECK(table_, "ImageDataset: no label table");
  CUDL_CHECK(options_.size > 0, "ImageDataset: image size must be positive, got ", options_.size);
  const auto n = static_cast<int64_t>(table_->items.size());
  for (int64_t r : rows_)
    CUDL_CHECK(r >= 0 && r < n, "ImageDataset: row ", r, " outside the table of ", n, " rows");
  cache_->slots.resize(static_cast<size_t>(n));
}

ImageDataset::ImageDataset(std::shared_ptr<const LabelTable> table, const LoadOptions& options)
    : ImageDataset(
          table,
          [&] {
            std::vector<int64_t> all(table ? table->items.size() : 0);
            for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
            return all;
          }(),
          options) {}

void ImageDataset::check_index(int64_t i) const {
  CUDL_CHECK(i >= 0 && i < size(), "ImageDataset: index ", i, " out of range for ", size(),
             " items");
}

const LabelledImage& ImageDataset::item(int64_t i) const {
  check_index(i);
  return table_->items[static_cast<size_t>(rows_[static_cast<size_t>(i)])];
}

bool ImageDataset::is_cached(int64_t i) const {
  check_index(i);
  std::lock_guard<std::mutex> lock(cache_->mutex);
  return cache_->slots[static_cast<size_t>(rows_[static_cast<size_t>(i)])] != nullptr;
}

std::shared_ptr<const ResizedImage> ImageDataset::image(int64_t i) const {
  check_index(i);
  const auto row = static_cast<size_t>(rows_[static_cast<size_t>(i)]);
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    if (cache_->slots[row]) return cache_->slots[row];
  }
  const LabelledImage& it = table_->items[row];
  std::shared_ptr<const ResizedImage> img;
  try {
    img = std::make_shared<const ResizedImage>(load_resized(it.path, options_));
  } catch (const Error& e) {
    if (table_->csv_path.empty()) throw;  // images given by name, not listed in a labels file
    CUDL_THROW(e.message(), " (listed on line ", it.line, " of ", table_->csv_path, ")");
  }
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (!cache_->slots[row]) cache_->slots[row] = std::move(img);
  return cache_->slots[row];
}

void ImageDataset::multi_hot(int64_t i, float* out) const {
  const LabelledImage& it = item(i);
  std::fill(out, out + num_classes(), 0.f);
  for (int id : it.label_ids) out[id] = 1.f;
}

int64_t ImageDataset::class_index(int64_t i) const {
  const LabelledImage& it = item(i);
  CUDL_CHECK(it.label_ids.size() == 1, table_->csv_path, ":", it.line, ": '", it.filename, "' has ",
             it.label_ids.size(),
             " labels: a class index needs exactly one (multi-label data "
             "uses multi-hot targets)");
  return it.label_ids[0];
}

int64_t ImageDataset::preload(int threads, bool skip_bad) {
  const int64_t n = size();
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
  std::atomic<int64_t> next{0};
  auto work = [&] {
    for (int64_t i; (i = next.fetch_add(1)) < n;) {
      try {
        image(i);
      } catch (...) {
        errors[static_cast<size_t>(i)] = std::current_exception();
      }
    }
  };
  int nt =
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  nt = static_cast<int>(std::min<int64_t>(nt, std::max<int64_t>(n, 1)));
  std::vector<std::thread> pool;
  for (int t = 1; t < nt; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  std::vector<int64_t> kept;
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto& e = errors[static_cast<size_t>(i)];
    if (!e) {
      kept.push_back(rows_[static_cast<size_t>(i)]);
      continue;
    }
    if (!skip_bad) {
      // cudl's own errors here are the image's (unreadable, not an image, corrupt): skippable.
      try {
        std::rethrow_exception(e);
      } catch (const Error& err) {
        if (dynamic_cast<const BadDataError*>(&err) || dynamic_cast<const DeviceError*>(&err))
          throw;
        throw BadDataError(err.message(), __FILE__, __LINE__, BadDataError::Kind::kImage);
      }
    }
    log_warning(message_of(e) + " (image skipped)");
    ++bad;
  }
  if (bad > 0) {
    log_warning(str(table_->csv_path.empty() ? "" : table_->csv_path + ": ", "skipped ", bad,
                    " image", bad == 1 ? "" : "s", " that could not be decoded, of ", n));
    rows_ = std::move(kept);
  }
  return bad;
}

ImageDataset ImageDataset::subset(const std::vector<int64_t>& positions) const {
  std::vector<int64_t> rows;
  rows.reserve(positions.size());
  for (int64_t p : positions) {
    check_index(p);
    rows.push_back(rows_[static_cast<size_t>(p)]);
  }
  ImageDataset d(table_, std::move(rows), options_);
  d.cache_ = cache_;
  return d;
}

int64_t ImageDataset::cache_bytes() const {
  std::lock_guard<std::mutex> lock(cache_->mutex);
  int64_t total = 0;
  for (const auto& s : cache_->slots)
    if (s) total += static_cast<int64_t>(s->pixels.size());
  return total;
}

std::string file_set_hash(const ImageDataset& ds) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < ds.size(); ++i) names.push_back(ds.item(i).filename);
  return file_set_hash(std::move(names));
}

ImageData load_image_data(const ImageDataOptions& o) {
  CUDL_CHECK(!o.csv_path.empty(),
             "load_image_data: no labels file given (ImageDataOptions::csv_path)");
  LabelsOptions lo = o.labels;
  if (o.split == SplitMode::kValidColumn && lo.valid_column.empty()) lo.valid_column = "is_valid";
  if (o.multi_label == false) lo.single_label = true;
  LabelTable train_table = read_labels(o.csv_path, o.image_dir, lo);
  std::optional<LabelTable> valid_table;
  if (o.split == SplitMode::kValidCsv) {
    CUDL_CHECK(!o.valid_csv.empty(),
               "load_image_data: SplitMode::kValidCsv needs valid_csv (the "
               "validation labels file)");
    valid_table =
        read_labels(o.valid_csv, o.valid_image_dir.empty() ? o.image_dir : o.valid_image_dir, lo);
  }
  if (o.split == SplitMode::kValidColumn)
    CUDL_CHECK(train_table.has_valid_column, o.csv_path, ": no '", lo.valid_column,
               "' column: expected a boolean column marking the validation rows for this split");

  ImageData out;
  if (lo.classes.empty()) {
    std::vector<const LabelTable*> tables{&train_table};
    if (valid_table) tables.push_back(&*valid_table);
    out.classes = classes_of(tables);
  } else {
    out.classes = lo.classes;
  }
  out.multi_label = o.multi_label.value_or(train_table.multi_label ||
                                           (valid_table && valid_table->multi_label));
  assign_classes(train_table, out.classes);
  train_table.multi_label = out.multi_label;
  out.skipped = train_table.skipped;

  auto train_all = std::make_shared<ImageDataset>(
      std::make_shared<const LabelTable>(std::move(train_table)), o.load);
  if (o.preload) out.skipped += train_all->preload(o.threads, lo.skip_bad);

  if (valid_table) {
    assign_classes(*valid_table, out.classes);
    valid_table->multi_label = out.multi_label;
    out.skipped += valid_table->skipped;
    out.train = train_all;
    out.valid = std::make_shared<ImageDataset>(
        std::make_shared<const LabelTable>(std::move(*valid_table)), o.load);
    if (o.preload) out.skipped += out.valid->preload(o.threads, lo.skip_bad);
  } else {
    Split s;
    if (o.split == SplitMode::kNone) {
      s = split_by_flags(std::vector<bool>(static_cast<size_t>(train_all->size()), false));
    } else if (o.split == SplitMode::kRandom) {
      s = split_by_rand_pct(train_all->size(), o.valid_pct, o.seed);
    } else {
      std::vector<bool> flags(static_cast<size_t>(train_all->size()));
      for (int64_t i = 0; i < train_all->size(); ++i)
        flags[static_cast<size_t>(i)] = train_all->item(i).valid == 1;
      s = split_by_flags(flags);
    }
    out.train = std::make_shared<ImageDataset>(train_all->subset(s.train));
    out.valid = std::make_shared<ImageDataset>(train_all->subset(s.valid));
  }
  // Without a split the caller says what an empty set means (fridge_eval: nothing to score).
  CUDL_CHECK(o.split == SplitMode::kNone || out.train->size() > 0, o.csv_path,
             ": no training images after the split (", out.valid->size(), " validation images)");
  return out;
}

}  // namespace cudl::data
