#include "data/labels.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <unordered_map>
#include <unordered_set>

#include "data/csv.h"
#include "tensor/error.h"

namespace cudl::data {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string joined(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return s.substr(b, e - b);
}

// Column index of `chosen` (when given) or of the first of `names` in the header; -1 if absent.
int find_column(const std::vector<std::string>& header, const std::string& chosen,
                const std::vector<std::string>& names) {
  const std::vector<std::string> wanted = chosen.empty() ? names : std::vector<std::string>{chosen};
  for (const std::string& w : wanted)
    for (size_t i = 0; i < header.size(); ++i)
      if (lower(trim(header[i])) == lower(w)) return static_cast<int>(i);
  return -1;
}

std::string describe_header(const std::vector<std::string>& header) {
  std::vector<std::string> quoted;
  for (const auto& h : header) quoted.push_back("'" + h + "'");
  return "the header has " + (header.empty() ? std::string("no columns") : joined(quoted));
}

// 1, 0, or -1 when not a boolean.
int parse_bool(const std::string& s) {
  const std::string v = lower(trim(s));
  if (v == "true" || v == "1" || v == "yes" || v == "t" || v == "y") return 1;
  if (v == "false" || v == "0" || v == "no" || v == "f" || v == "n") return 0;
  return -1;
}

std::string path_join(const std::string& dir, const std::string& name) {
  if (dir.empty() || (!name.empty() && name[0] == '/')) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

}  // namespace

std::vector<std::string> classes_of(const std::vector<const LabelTable*>& tables) {
  std::vector<std::string> all;
  for (const LabelTable* t : tables)
    for (const auto& item : t->items) all.insert(all.end(), item.labels.begin(), item.labels.end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

void assign_classes(LabelTable& table, const std::vector<std::string>& classes) {
  std::unordered_map<std::string, int> id;
  for (size_t i = 0; i < classes.size(); ++i) id.emplace(classes[i], static_cast<int>(i));
  for (auto& item : table.items) {
    item.label_ids.clear();
    for (const auto& l : item.labels) {
      auto it = id.find(l);
      CUDL_CHECK(it != id.end(), table.csv_path, ":", item.line, ": label '", l,
                 "' is not one of the classes (", joined(classes), ")");
      item.label_ids.push_back(it->second);
    }
    std::sort(item.label_ids.begin(), item.label_ids.end());
  }
  table.classes = classes;
}

LabelTable read_labels(const std::string& csv_path, const std::string& image_dir,
                       const LabelsOptions& o) {
  const CsvTable csv = read_csv(csv_path, o.delimiter);
  LabelTable t;
  t.csv_path = csv_path;
  t.image_dir = image_dir;
  const std::vector<std::string>& header = csv.header;
  const int fcol = find_column(header, o.filename_column, {"filename", "fname", "image", "file"});
  const int lcol = find_column(header, o.labels_column, {"labels", "label", "tags"});
  const int vcol = o.valid_column.empty() ? -1 : find_column(header, o.valid_column, {});
  const std::string head = str(csv_path, ":", csv.header_line, ": ");
  CUDL_CHECK(fcol >= 0, head, "no file name column: expected ",
             o.filename_column.empty() ? std::string("one named filename, fname, image or file")
                                       : "a column named '" + o.filename_column + "'",
             " (", describe_header(header), ")");
  CUDL_CHECK(lcol >= 0, head, "no labels column: expected ",
             o.labels_column.empty() ? std::string("one named labels, label or tags")
                                     : "a column named '" + o.labels_column + "'",
             " (", describe_header(header), ")");
  CUDL_CHECK(fcol != lcol, head, "the file name and labels columns are the same column ('",
             header[fcol], "')");
  CUDL_CHECK(vcol < 0 || (vcol != fcol && vcol != lcol), head, "the validation column '",
             header[std::max(vcol, 0)], "' is the ", vcol == fcol ? "file name" : "labels",
             " column: expected a column of its own marking the validation rows");
  t.has_valid_column = vcol >= 0;
  CUDL_CHECK(!csv.rows.empty(), head,
             "no rows after the header: expected one line per image, e.g. 13.jpg,carton can");

  std::unordered_map<std::string, int64_t> seen;  // file name -> line of its first row
  std::unordered_set<std::string> known(o.classes.begin(), o.classes.end());
  for (const CsvRecord& row : csv.rows) {
    std::string problem;
    BadDataError::Kind kind = BadDataError::Kind::kRow;
    LabelledImage item;
    item.line = row.line;
    if (row.fields.size() != header.size()) {
      problem =
          str("expected ", header.size(), " fields as in the header, found ", row.fields.size());
    } else {
      item.filename = row.fields[static_cast<size_t>(fcol)];
      const std::string& labels = row.fields[static_cast<size_t>(lcol)];
      size_t b = 0;
      while (b <= labels.size()) {
        size_t e = labels.find(o.label_delimiter, b);
        if (e == std::string::npos) e = labels.size();
        std::string l = trim(labels.substr(b, e - b));
        if (!l.empty() && std::find(item.labels.begin(), item.labels.end(), l) == item.labels.end())
          item.labels.push_back(std::move(l));
        b = e + 1;
      }
      auto dup = seen.find(item.filename);
      if (item.filename.empty()) {
        problem =
            str("empty file name in column '", header[fcol], "': expected an image file name");
      } else if (item.labels.empty() && !o.allow_no_labels) {
        kind = BadDataError::Kind::kRowWithoutLabels;
        problem = str("row without labels for '", item.filename,
                      "': expected at least one label in column '", header[lcol],
                      "' (separated by '", o.label_delimiter, "')");
      } else if (o.single_label && item.labels.size() != 1) {
        problem = str(item.labels.size(), " labels for '", item.filename,
                      "': expected one label per image, as a single-label model predicts");
      } else if (dup != seen.end()) {
        problem = str("duplicate file name '", item.filename, "' (first listed on line ",
                      dup->second, "): expected each image once");
      } else if (vcol >= 0 &&
                 (item.valid = parse_bool(row.fields[static_cast<size_t>(vcol)])) < 0) {
        problem = str("column '", header[vcol], "' is '", row.fields[static_cast<size_t>(vcol)],
                      "': expected a boolean (True/False, 1/0, yes/no)");
      }
      if (problem.empty() && !known.empty()) {
        for (const auto& l : item.labels)
          if (!known.count(l)) {
            problem = str("label '", l, "' is not one of the classes (", joined(o.classes), ")");
            break;
          }
      }
      if (problem.empty()) {
        item.path = path_join(image_dir, item.filename);
        if (o.check_files) {
          struct stat sb;
          if (::stat(item.path.c_str(), &sb) != 0)
            problem = str("image '", item.path, "' not found: expected the file named in column '",
                          header[fcol], "' to exist");
          else if (!S_ISREG(sb.st_mode))
            problem = str("image '", item.path, "' is not a regular file");
        }
      }
    }
    if (!problem.empty()) {
      const std::string msg = str(csv_path, ":", row.line, ": ", problem);
      if (!o.skip_bad) throw BadDataError(msg, __FILE__, __LINE__, kind);
      log_warning(msg + " (row skipped)");
      t.warnings.push_back(msg);
      ++t.skipped;
      continue;
    }
    seen.emplace(item.filename, item.line);
    t.items.push_back(std::move(item));
  }
  if (t.skipped > 0)
    log_warning(str(csv_path, ": skipped ", t.skipped, " bad row", t.skipped == 1 ? "" : "s",
                    " of ", csv.rows.size()));
  CUDL_CHECK(!t.items.empty(), csv_path, ": no usable rows: all ", csv.rows.size(),
             " rows were bad (see the warnings above)");
  for (const auto& item : t.items)
    if (item.labels.size() != 1) t.multi_label = true;
  assign_classes(t, o.classes.empty() ? classes_of({&t}) : o.classes);
  return t;
}

}  // namespace cudl::data
