// Label files: DATA/labels.csv naming each image (relative to an image folder) and its labels.
//
// Columns are found by name in the header (case-insensitive): the file name in the first of
// "filename", "fname", "image", "file" and the labels in the first of "labels", "label", "tags",
// unless LabelsOptions names them. An optional boolean column ("is_valid" by default) marks
// validation rows. Labels within a field are separated by LabelsOptions::label_delimiter (one
// space by default; repeated delimiters are ignored). The classes are the sorted (byte order,
// as Python's sorted()) unique labels of the data, unless a class list is given; the task is
// multi-label when any row has a number of labels other than one.
//
// Bad input is refused with one message naming the CSV file, the line and what was expected:
// an empty file, a header without the needed columns, a row with the wrong number of fields,
// an empty file name, a row without labels, a duplicate file name, a missing image file, an
// is_valid value that is not a boolean, a label outside a given class list, other than one label
// where LabelsOptions::single_label asks for one. With LabelsOptions::skip_bad each bad row is
// instead skipped with a warning (cudl::log_warning) and counted in LabelTable::skipped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cudl::data {

struct LabelsOptions {
  std::string filename_column;            // empty: found by name
  std::string labels_column;              // empty: found by name
  std::string valid_column = "is_valid";  // read when present; empty: never
  char delimiter = ',';                   // between CSV fields
  char label_delimiter = ' ';             // between labels in the labels field
  bool skip_bad = false;                  // skip bad rows with a warning instead of failing
  bool allow_no_labels = false;           // accept rows with an empty labels field (multi-label)
  bool single_label = false;              // a row without exactly one label is bad (the data of
                                          // a single-label model), allow_no_labels or not
  bool check_files = true;                // every image file must exist
  // When non-empty: the classes to use, in this order (e.g. those of a trained model); a label
  // outside it makes the row bad.
  std::vector<std::string> classes;
};

struct LabelledImage {
  std::string filename;             // as written in the CSV
  std::string path;                 // image_dir / filename
  std::vector<std::string> labels;  // as written, in order, without duplicates
  std::vector<int> label_ids;       // indices into LabelTable::classes, increasing
  int valid = -1;                   // is_valid column: 1, 0, or -1 when there is none
  int64_t line = 0;                 // CSV line
};

struct LabelTable {
  std::string csv_path;
  std::string image_dir;
  std::vector<std::string> classes;
  bool multi_label = false;
  bool has_valid_column = false;
  std::vector<LabelledImage> items;
  int64_t skipped = 0;                // bad rows skipped (skip_bad)
  std::vector<std::string> warnings;  // one per skipped row
};

// Reads `csv_path`; image paths are image_dir + "/" + filename.
LabelTable read_labels(const std::string& csv_path, const std::string& image_dir,
                       const LabelsOptions& options = {});

// Sets table.classes to `classes` and recomputes every item's label_ids; throws naming the CSV
// line of a label that is not in `classes`.
void assign_classes(LabelTable& table, const std::vector<std::string>& classes);
// Sorted unique labels of the tables.
std::vector<std::string> classes_of(const std::vector<const LabelTable*>& tables);

}  // namespace cudl::data
