// ImageDataset: labelled images (a LabelTable) with their decoded, resized pixels cached in memory
// as uint8, so a dataset of the notebook's size is decoded once, not every epoch.
//
// The cache holds, per image, the output of load_resized(): the size x size centre crop (or, with
// LoadOptions::keep_uncropped, the resized image around it, for random resized crops). Images
// are decoded on first use from any thread (the DataLoader's workers), or all at once by
// preload(). Subsets (the train and validation parts of a split) share the table and the cache.
//
// load_image_data() is the whole of RECIPE.md's data block: read labels.csv, check the images,
// decode them once, split (NumPy-identical random split, an is_valid column, or a separate
// validation CSV; or no split, every row a training row) and return the two datasets. The task
// is the data's (multi-label when a row has other than one label) or one given (a trained
// model's, for scoring).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/labels.h"
#include "data/load.h"
#include "data/split.h"

namespace cudl::data {

class ImageDataset {
 public:
  // The rows `rows` of `table` (all rows when empty is not meant: pass them explicitly).
  ImageDataset(std::shared_ptr<const LabelTable> table, std::vector<int64_t> rows,
               const LoadOptions& options = {});
  // Every row of the table.
  explicit ImageDataset(std::shared_ptr<const LabelTable> table, const LoadOptions& options = {});

  int64_t size() const { return static_cast<int64_t>(rows_.size()); }
  int image_size() const { return options_.size; }
  const LoadOptions& options() const { return options_; }
  const std::vector<std::string>& classes() const { return table_->classes; }
  int64_t num_classes() const { return static_cast<int64_t>(table_->classes.size()); }
  bool multi_label() const { return table_->multi_label; }
  const LabelTable& table() const { return *table_; }
  const std::vector<int64_t>& rows() const { return rows_; }

  const LabelledImage& item(int64_t i) const;
  // The cached pixels of item i, decoding them on first use (thread-safe). Throws a
  // cudl::Error naming the file (and its CSV line) when it cannot be decoded.
  std::shared_ptr<const ResizedImage> image(int64_t i) const;
  bool is_cached(int64_t i) const;
  // Writes item i's target: multi-hot (num_classes floats) for multi-label data.
  void multi_hot(int64_t i, float* out) const;
  // Class index of a single-label item.
  int64_t class_index(int64_t i) const;

  // Decodes every uncached image on `threads` threads (0: all cores). Throws the failure of the
  // first bad item in dataset order, unless skip_bad: then bad items are removed from this
  // dataset with a warning each, and their number is returned.
  int64_t preload(int threads = 0, bool skip_bad = false);
  // Items at the given positions of this dataset, sharing table and cache.
  ImageDataset subset(const std::vector<int64_t>& positions) const;
  // Bytes of pixels held by the cache.
  int64_t cache_bytes() const;

 private:
  struct Cache;
  std::shared_ptr<const LabelTable> table_;
  std::vector<int64_t> rows_;
  LoadOptions options_;
  std::shared_ptr<Cache> cache_;
  void check_index(int64_t i) const;
};

enum class SplitMode {
  kNone,         // no split: every usable row is a training row, and valid is empty
  kRandom,       // split_by_rand_pct(valid_pct, seed) over the usable rows
  kValidColumn,  // the CSV's boolean is_valid column (LabelsOptions::valid_column)
  kValidCsv,     // a second labels file (valid_csv) for validation
};

struct ImageDataOptions {
  std::string csv_path;   // DATA/labels.csv
  std::string image_dir;  // DATA/images
  LabelsOptions labels;   // columns, delimiters, skip_bad
  LoadOptions load;       // size 300, decoding, antialias
  SplitMode split = SplitMode::kRandom;
  double valid_pct = 0.2;
  uint32_t seed = 10;
  std::string valid_csv;  // kValidCsv; images in valid_image_dir (default image_dir)
  std::string valid_image_dir;
  // The task when it is not the data's own: a trained model's. A multi-label model's targets are
  // multi-hot even where every row has one label; for a single-label model a row with more than
  // one label is bad (LabelsOptions::single_label). Unset: multi-label when any row has a number
  // of labels other than one.
  std::optional<bool> multi_label;
  bool preload = true;  // decode everything up front (bad images found before training)
  int threads = 0;      // for preloading; 0: all cores
};

struct ImageData {
  std::vector<std::string> classes;
  bool multi_label = false;
  std::shared_ptr<ImageDataset> train;
  std::shared_ptr<ImageDataset> valid;
  int64_t skipped = 0;  // bad rows and images skipped (labels.skip_bad)
};

// file_set_hash (split.h) of the dataset's file names: what fridge_train records of its
// validation set, and fridge_eval --split compares.
std::string file_set_hash(const ImageDataset& dataset);

// RECIPE.md's data block. With labels.skip_bad, bad rows (CSV problems, missing files) and images
// that fail to decode are dropped with a warning before the split, which then applies to the
// usable rows. A split must leave training images; without one (SplitMode::kNone) an empty
// result is the caller's to judge.
ImageData load_image_data(const ImageDataOptions& options);

}  // namespace cudl::data
