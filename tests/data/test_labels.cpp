// The labels CSV: RFC 4180 quirks (quotes, CRLF, BOM, blank lines) and every bad labels file of
// the issue, each with a message naming the file, the line and what was expected, or with
// skip_bad a warning and a count.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "data/csv.h"
#include "data/labels.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

namespace cudl::data {
namespace {

using ::cudl::testing::error_of;

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempDir;

// ---- CSV ---------------------------------------------------------------------------------------

TEST(Csv, QuotesDelimitersAndEmbeddedLineBreaks) {
  const CsvTable t = parse_csv(
      "filename,labels\n"
      "\"a,b.jpg\",\"can \"\"big\"\"\"\n"
      "\"multi\nline.jpg\",carton\n"
      "plain.jpg , milk_bottle \n"
      "empty.jpg,\n",
      "t.csv");
  EXPECT_THAT(t.header, ElementsAre("filename", "labels"));
  ASSERT_EQ(t.rows.size(), 4u);
  EXPECT_THAT(t.rows[0].fields, ElementsAre("a,b.jpg", "can \"big\""));
  EXPECT_THAT(t.rows[1].fields, ElementsAre("multi\nline.jpg", "carton"));
  EXPECT_THAT(t.rows[2].fields, ElementsAre("plain.jpg", "milk_bottle"));  // trimmed
  EXPECT_THAT(t.rows[3].fields, ElementsAre("empty.jpg", ""));
  // Lines: the quoted line break moves the next record to line 5.
  EXPECT_EQ(t.rows[0].line, 2);
  EXPECT_EQ(t.rows[1].line, 3);
  EXPECT_EQ(t.rows[2].line, 5);
  EXPECT_EQ(t.rows[3].line, 6);
}

TEST(Csv, BomCrlfLoneCrAndBlankLines) {
  const CsvTable t = parse_csv(
      "\xEF\xBB\xBF"
      "filename,labels\r\n\r\n  \r\n1.jpg,can\r\n\n2.jpg,carton\r3.jpg,x",
      "t.csv");
  EXPECT_THAT(t.header, ElementsAre("filename", "labels"));  // no BOM in the first name
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.rows[0].line, 4);
  EXPECT_THAT(t.rows[0].fields, ElementsAre("1.jpg", "can"));
  EXPECT_EQ(t.rows[1].line, 6);
  EXPECT_EQ(t.rows[2].line, 7);
  EXPECT_THAT(t.rows[2].fields, ElementsAre("3.jpg", "x"));  // no final newline
}

TEST(Csv, OtherDelimiter) {
  const CsvTable t = parse_csv("filename;labels\n1.jpg;can,carton\n", "t.csv", ';');
  EXPECT_THAT(t.rows[0].fields, ElementsAre("1.jpg", "can,carton"));
}

TEST(Csv, Errors) {
  EXPECT_THAT(
      error_of([] { parse_csv("", "e.csv"); }),
      AllOf(HasSubstr("e.csv"), HasSubstr("empty CSV file"), HasSubstr("expected a header")));
  EXPECT_THAT(error_of([] { parse_csv("\xEF\xBB\xBF\n\n  \n", "blank.csv"); }),
              HasSubstr("empty CSV file"));
  EXPECT_THAT(
      error_of([] { parse_csv("filename,labels\n\"1.jpg,can\n2.jpg,x\n", "q.csv"); }),
      AllOf(HasSubstr("q.csv:2"), HasSubstr("unterminated quoted field"), HasSubstr("line 2")));
  EXPECT_THAT(error_of([] { parse_csv("filename,labels\n\"1.jpg\"x,can\n", "a.csv"); }),
              AllOf(HasSubstr("a.csv:2"), HasSubstr("'x' after a closing quote"),
                    HasSubstr("expected ','")));
  EXPECT_THAT(error_of([] { read_csv("/nonexistent/labels.csv"); }),
              AllOf(HasSubstr("/nonexistent/labels.csv"), HasSubstr("cannot open")));
  // UTF-16 (as some spreadsheet programs save "Unicode text"), with or without its mark.
  const std::string utf16le("\xFF\xFE" "f\0i\0l\0e\0", 10), bare("f\0i\0l\0e\0", 8);
  EXPECT_THAT(error_of([&] { parse_csv(utf16le, "u.csv"); }),
              AllOf(HasSubstr("u.csv"), HasSubstr("UTF-16"), HasSubstr("save it as UTF-8")));
  EXPECT_THAT(error_of([&] { parse_csv(bare, "b.csv"); }), HasSubstr("UTF-16 or binary"));
}

// ---- labels files ------------------------------------------------------------------------------

// A folder with images/ holding the named (empty) files and labels.csv with `csv`.
struct LabelsDir {
  TempDir dir;
  LabelsDir(const std::string& csv, const std::vector<std::string>& images) {
    std::filesystem::create_directory(dir / "images");
    for (const auto& name : images) testing::write_text(dir / ("images/" + name), "x");
    testing::write_text(dir / "labels.csv", csv);
  }
  std::string csv() const { return dir / "labels.csv"; }
  std::string images() const { return dir / "images"; }
  LabelTable read(const LabelsOptions& o = {}) const { return read_labels(csv(), images(), o); }
};

TEST(Labels, NotebookLayoutMultiLabelSortedClasses) {
  LabelsDir d("filename,labels\n13.jpg,carton can\n2.jpg,water_bottle\n7.jpg,milk_bottle can\n",
              {"13.jpg", "2.jpg", "7.jpg"});
  const LabelTable t = d.read();
  EXPECT_THAT(t.classes, ElementsAre("can", "carton", "milk_bottle", "water_bottle"));
  EXPECT_TRUE(t.multi_label);
  ASSERT_EQ(t.items.size(), 3u);
  EXPECT_EQ(t.items[0].filename, "13.jpg");
  EXPECT_EQ(t.items[0].path, d.images() + "/13.jpg");
  EXPECT_THAT(t.items[0].labels, ElementsAre("carton", "can"));
  EXPECT_THAT(t.items[0].label_ids, ElementsAre(0, 1));
  EXPECT_THAT(t.items[1].label_ids, ElementsAre(3));
  EXPECT_EQ(t.items[2].line, 4);
  EXPECT_FALSE(t.has_valid_column);
}

TEST(Labels, SingleLabelDataIsNotMultiLabel) {
  LabelsDir d("fname,label\na.jpg,dog\nb.jpg,cat\nc.jpg,dog\n", {"a.jpg", "b.jpg", "c.jpg"});
  const LabelTable t = d.read();
  EXPECT_FALSE(t.multi_label);
  EXPECT_THAT(t.classes, ElementsAre("cat", "dog"));
}

TEST(Labels, ColumnsByNameCaseInsensitiveOrChosen) {
  LabelsDir d("id,Tags,IMAGE,extra\n1,a|b,x.jpg,9\n", {"x.jpg"});
  LabelsOptions o;
  o.label_delimiter = '|';
  const LabelTable t = d.read(o);
  EXPECT_EQ(t.items[0].filename, "x.jpg");
  EXPECT_THAT(t.items[0].labels, ElementsAre("a", "b"));
  o.filename_column = "IMAGE";
  o.labels_column = "extra";
  EXPECT_THAT(d.read(o).items[0].labels, ElementsAre("9"));
}

TEST(Labels, RepeatedDelimitersAndDuplicateLabels) {
  LabelsDir d("filename,labels\n1.jpg,  can   can carton \n", {"1.jpg"});
  EXPECT_THAT(d.read().items[0].labels, ElementsAre("can", "carton"));
}

TEST(Labels, ValidColumnIsParsed) {
  LabelsDir d("filename,labels,is_valid\n1.jpg,a,True\n2.jpg,b,false\n3.jpg,a,1\n",
              {"1.jpg", "2.jpg", "3.jpg"});
  const LabelTable t = d.read();
  EXPECT_TRUE(t.has_valid_column);
  EXPECT_EQ(t.items[0].valid, 1);
  EXPECT_EQ(t.items[1].valid, 0);
  EXPECT_EQ(t.items[2].valid, 1);
  LabelsDir bad("filename,labels,is_valid\n1.jpg,a,maybe\n", {"1.jpg"});
  EXPECT_THAT(error_of([&] { bad.read(); }), AllOf(HasSubstr("labels.csv:2"), HasSubstr("'maybe'"),
                                                   HasSubstr("expected a boolean")));
  // Read only where asked for (an empty name: never), and never one of the other two columns.
  LabelsOptions none;
  none.valid_column = "";
  EXPECT_FALSE(bad.read(none).has_valid_column);
  LabelsOptions labels_col;
  labels_col.valid_column = "labels";
  EXPECT_THAT(error_of([&] { d.read(labels_col); }),
              AllOf(HasSubstr("validation column 'labels' is the labels column")));
}

TEST(BadLabels, EmptyCsv) {
  LabelsDir d("", {});
  EXPECT_THAT(error_of([&] { d.read(); }),
              AllOf(HasSubstr("labels.csv"), HasSubstr("empty CSV file")));
  LabelsDir h("filename,labels\n\n", {});
  EXPECT_THAT(error_of([&] { h.read(); }),
              AllOf(HasSubstr("labels.csv:1"), HasSubstr("no rows after the header")));
}

TEST(BadLabels, MissingColumns) {
  LabelsDir d("name,labels\n1.jpg,can\n", {"1.jpg"});
  EXPECT_THAT(error_of([&] { d.read(); }),
              AllOf(HasSubstr("labels.csv:1"), HasSubstr("no file name column"),
                    HasSubstr("filename, fname, image or file"), HasSubstr("'name', 'labels'")));
  LabelsDir l("filename,classes\n1.jpg,can\n", {"1.jpg"});
  EXPECT_THAT(error_of([&] { l.read(); }),
              AllOf(HasSubstr("no labels column"), HasSubstr("labels, label or tags"),
                    HasSubstr("'classes'")));
  LabelsOptions o;
  o.labels_column = "kinds";
  EXPECT_THAT(error_of([&] { l.read(o); }), HasSubstr("a column named 'kinds'"));
}

TEST(BadLabels, RowWithoutLabels) {
  LabelsDir d("filename,labels\n1.jpg,can\n2.jpg,\n", {"1.jpg", "2.jpg"});
  EXPECT_THAT(error_of([&] { d.read(); }),
              AllOf(HasSubstr("labels.csv:3"), HasSubstr("row without labels for '2.jpg'"),
                    HasSubstr("expected at least one label")));
  // A bad row that --skip-bad would skip, and --allow-empty would read.
  try {
    d.read();
  } catch (const BadDataError& e) {
    EXPECT_EQ(e.kind(), BadDataError::Kind::kRowWithoutLabels);
  }
  LabelsOptions o;
  o.allow_no_labels = true;
  const LabelTable t = d.read(o);
  EXPECT_TRUE(t.multi_label);
  EXPECT_TRUE(t.items[1].label_ids.empty());
}

TEST(BadLabels, DuplicateFileName) {
  LabelsDir d("filename,labels\n1.jpg,can\n2.jpg,can\n1.jpg,carton\n", {"1.jpg", "2.jpg"});
  EXPECT_THAT(error_of([&] { d.read(); }),
              AllOf(HasSubstr("labels.csv:4"), HasSubstr("duplicate file name '1.jpg'"),
                    HasSubstr("first listed on line 2")));
}

TEST(BadLabels, MissingImage) {
  LabelsDir d("filename,labels\n1.jpg,can\n404.jpg,can\n", {"1.jpg"});
  EXPECT_THAT(error_of([&] { d.read(); }),
              AllOf(HasSubstr("labels.csv:3"), HasSubstr("404.jpg' not found"),
                    HasSubstr("expected the file")));
  try {
    d.read();
  } catch (const BadDataError& e) {  // one that --skip-bad would skip
    EXPECT_EQ(e.kind(), BadDataError::Kind::kRow);
  }
  LabelsOptions o;
  o.check_files = false;
  EXPECT_EQ(d.read(o).items.size(), 2u);
}

TEST(BadLabels, WrongFieldCountAndEmptyFileName) {
  LabelsDir d("filename,labels\n1.jpg,can,extra\n", {"1.jpg"});
  EXPECT_THAT(
      error_of([&] { d.read(); }),
      AllOf(HasSubstr("labels.csv:2"), HasSubstr("expected 2 fields as in the header, found 3")));
  LabelsDir e("filename,labels\n,can\n", {});
  EXPECT_THAT(error_of([&] { e.read(); }),
              AllOf(HasSubstr("labels.csv:2"), HasSubstr("empty file name")));
}

TEST(BadLabels, LabelOutsideGivenClasses) {
  LabelsDir d("filename,labels\n1.jpg,can\n2.jpg,banana\n", {"1.jpg", "2.jpg"});
  LabelsOptions o;
  o.classes = {"can", "carton"};
  EXPECT_THAT(error_of([&] { d.read(o); }),
              AllOf(HasSubstr("labels.csv:3"),
                    HasSubstr("label 'banana' is not one of the classes (can, carton)")));
}

TEST(BadLabels, MoreThanOneLabelWhereOneIsAskedFor) {
  LabelsDir d("filename,labels\n1.jpg,can\n2.jpg,can carton\n3.jpg,carton\n",
              {"1.jpg", "2.jpg", "3.jpg"});
  LabelsOptions o;
  EXPECT_TRUE(d.read(o).multi_label);  // by default the data decide the task
  o.single_label = true;
  EXPECT_THAT(error_of([&] { d.read(o); }),
              AllOf(HasSubstr("labels.csv:3"), HasSubstr("2 labels for '2.jpg'"),
                    HasSubstr("expected one label per image")));
  o.skip_bad = true;
  const LabelTable t = d.read(o);
  EXPECT_EQ(t.skipped, 1);
  EXPECT_FALSE(t.multi_label);
  ASSERT_EQ(t.items.size(), 2u);
  EXPECT_EQ(t.items[1].filename, "3.jpg");
}

TEST(BadLabels, SkipBadWarnsCountsAndKeepsTheRest) {
  LabelsDir d(
      "filename,labels\n"
      "1.jpg,can\n"
      "2.jpg,\n"        // no labels
      "1.jpg,carton\n"  // duplicate
      "404.jpg,can\n"   // missing image
      "3.jpg,can,x\n"   // field count
      "4.jpg,milk_bottle\n",
      {"1.jpg", "3.jpg", "4.jpg"});
  LabelsOptions o;
  o.skip_bad = true;
  const LabelTable t = d.read(o);
  EXPECT_EQ(t.skipped, 4);
  ASSERT_EQ(t.warnings.size(), 4u);
  EXPECT_THAT(t.warnings[0], HasSubstr("labels.csv:3"));
  EXPECT_THAT(t.warnings[1], HasSubstr("duplicate"));
  EXPECT_THAT(t.warnings[2], HasSubstr("404.jpg"));
  EXPECT_THAT(t.warnings[3], HasSubstr("labels.csv:6"));
  ASSERT_EQ(t.items.size(), 2u);
  EXPECT_EQ(t.items[1].filename, "4.jpg");
  EXPECT_THAT(t.classes, ElementsAre("can", "milk_bottle"));
  // Nothing usable left is still an error.
  LabelsDir none("filename,labels\n404.jpg,can\n", {});
  EXPECT_THAT(error_of([&] { none.read(o); }),
              AllOf(HasSubstr("no usable rows"), HasSubstr("all 1 rows")));
}

TEST(Labels, AssignClassesChecksLabels) {
  LabelsDir d("filename,labels\n1.jpg,b a\n", {"1.jpg"});
  LabelTable t = d.read();
  assign_classes(t, {"c", "b", "a"});
  EXPECT_THAT(t.items[0].label_ids, ElementsAre(1, 2));
  EXPECT_THAT(
      error_of([&] { assign_classes(t, {"a"}); }),
      AllOf(HasSubstr("labels.csv:2"), HasSubstr("label 'b' is not one of the classes (a)")));
}

}  // namespace
}  // namespace cudl::data
