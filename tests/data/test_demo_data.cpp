// The demo data generator: deterministic in (seed, index), the notebook's layout and classes,
// every label subset non-empty, readable by the pipeline, and not solvable from one pixel.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "data/dataset.h"
#include "data/demo_data.h"
#include "tests/data/data_test_util.h"

namespace cudl::data {
namespace {

using ::testing::ElementsAre;

TEST(DemoData, DeterministicPerSeedAndIndex) {
  DemoDataOptions o;
  o.height = 96;
  o.width = 72;
  std::vector<int> la, lb;
  const Image a = render_demo_image(o, 5, &la), b = render_demo_image(o, 5, &lb);
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_EQ(la, lb);
  EXPECT_NE(render_demo_image(o, 6, nullptr).pixels, a.pixels);
  o.seed = 1;
  EXPECT_NE(render_demo_image(o, 5, nullptr).pixels, a.pixels);
}

TEST(DemoData, WritesTheNotebookLayoutThatThePipelineReads) {
  testing::TempDir dir;
  DemoDataOptions o;
  o.num_images = 40;
  o.height = 120;
  o.width = 90;
  o.seed = 3;
  const DemoDataSummary s = write_demo_data(dir / "fridge", o);
  EXPECT_THAT(s.classes, ElementsAre("can", "carton", "milk_bottle", "water_bottle"));
  EXPECT_EQ(s.csv_path, dir / "fridge/labels.csv");
  const LabelTable t = read_labels(s.csv_path, s.image_dir);
  ASSERT_EQ(t.items.size(), 40u);
  EXPECT_EQ(t.items[0].filename, "1.jpg");
  EXPECT_EQ(t.classes, s.classes);
  EXPECT_TRUE(t.multi_label);
  std::set<std::vector<int>> subsets;
  for (size_t i = 0; i < t.items.size(); ++i) {
    EXPECT_FALSE(t.items[i].label_ids.empty());
    subsets.insert(t.items[i].label_ids);
    std::vector<int> l;
    render_demo_image(o, static_cast<int64_t>(i), &l);
    EXPECT_EQ(t.items[i].label_ids, l);
  }
  EXPECT_GE(subsets.size(), 10u);  // of the 15 possible
  for (int64_t c : s.class_counts) EXPECT_GT(c, 8);
  const Image img = decode_image(s.image_dir + "/7.jpg");
  EXPECT_EQ(img.height, 120);
  EXPECT_EQ(img.width, 90);
  // Same seed, same bytes.
  const DemoDataSummary again = write_demo_data(dir / "again", o);
  EXPECT_EQ(read_file(again.image_dir + "/7.jpg"), read_file(s.image_dir + "/7.jpg"));
}

TEST(DemoData, NoSinglePixelPredictsALabel) {
  // For every pixel position and channel, the best threshold on that value alone should not
  // predict a class much better than always answering the majority.
  DemoDataOptions o;
  o.height = 48;
  o.width = 36;
  const int n = 120;
  std::vector<Image> imgs;
  std::vector<std::vector<int>> labels(n);
  for (int i = 0; i < n; ++i) imgs.push_back(render_demo_image(o, i, &labels[i]));
  for (int cls = 0; cls < 4; ++cls) {
    int positives = 0;
    std::vector<bool> y(n);
    for (int i = 0; i < n; ++i) {
      y[i] = std::find(labels[i].begin(), labels[i].end(), cls) != labels[i].end();
      positives += y[i];
    }
    const int majority = std::max(positives, n - positives);
    int best = 0;
    for (size_t p = 0; p < imgs[0].pixels.size(); p += 7) {
      std::vector<std::pair<int, bool>> v(n);
      for (int i = 0; i < n; ++i) v[i] = {imgs[i].pixels[p], y[i]};
      std::sort(v.begin(), v.end());
      int below_pos = 0;
      for (int k = 0; k < n; ++k) {  // threshold between v[k-1] and v[k]
        const int above_pos = positives - below_pos;
        const int correct = std::max(k - below_pos + above_pos, below_pos + (n - k - above_pos));
        best = std::max(best, correct);
        below_pos += v[k].second;
      }
    }
    EXPECT_LT(best, majority + n / 4) << "class " << cls << ": one pixel gets " << best << " of "
                                      << n << " right (majority " << majority << ")";
  }
}

}  // namespace
}  // namespace cudl::data
