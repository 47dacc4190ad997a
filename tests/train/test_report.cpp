// The HTML report's building blocks. (The rendered page is checked in a real browser by the
// end-to-end tool test.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <regex>

#include "train/outputs.h"
#include "train/report.h"

namespace cudl::train {
namespace {

int count(const std::string& s, const std::string& needle) {
  int n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

// The epoch table keeps its columns for ordinary values and a space between cells however
// long a value is (a diverging loss of 1.3e12 ran into the next column).
TEST(EpochTable, ColumnsAlignAndLongValuesStaySeparated) {
  const std::string header = epoch_table_row({"epoch", "train_loss", "valid_loss", "train_hamming",
                                              "valid_hamming", "train_zero_one", "valid_zero_one",
                                              "time"});
  EXPECT_EQ(header,
            "epoch  train_loss  valid_loss  train_hamming  valid_hamming  train_zero_one  "
            "valid_zero_one  time");
  const std::string row = epoch_table_row({"1", "0.123456", "0.654321", "0.750000", "0.700000",
                                           "0.250000", "0.200000", "1.5s"});
  EXPECT_EQ(row.find("0.654321"), header.find("valid_loss"));
  EXPECT_EQ(row.find("1.5s"), header.find("time"));
  EXPECT_EQ(epoch_table_row({"1", "92.069457", "1339948619093.333252", "0.447917"}),
            "1      92.069457   1339948619093.333252 0.447917");
}

// What both programs say of the CPU's convolutions: Winograd or direct in float32; in mixed
// precision the same unless oneDNN's bfloat16 kernels compute them; nothing on a GPU.
TEST(ComputeModeText, NamesTheConvolutionsThatRan) {
  struct Case {
    ComputeMode mode;
    const char* conv;
    const char* text;
  };
  const std::vector<Case> cases = {
      {{false, false, true, true, false}, "winograd", ", Winograd 3x3 convolutions"},
      {{false, false, false, true, false}, "direct", ", direct convolutions"},
      // float32 never runs on the bfloat16 kernels, whatever the CPU.
      {{false, true, true, true, true}, "winograd", ", channels-last, Winograd 3x3 convolutions"},
      {{true, false, true, true, false}, "winograd",
       ", bfloat16 mixed precision, Winograd 3x3 convolutions"},
      {{true, false, false, true, true}, "onednn_bf16",
       ", bfloat16 mixed precision, oneDNN bfloat16 convolutions"},
      {{true, true, true, false, false}, "", ", bfloat16 mixed precision, channels-last"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(c.mode.cpu_convolutions(), c.conv);
    EXPECT_EQ(c.mode.text(), c.text);
    nlohmann::json j;
    c.mode.add_json(j);
    EXPECT_EQ(j.value("cpu_convolutions", ""), c.conv);
    EXPECT_EQ(j["precision"], c.mode.mixed_precision ? "bfloat16 mixed" : "float32");
  }
}

// The CPU options that slow a run down, said as a warning by both programs.
TEST(ComputeModeText, NamesTheOptionsThatSlowTheCpuDown) {
  using ::testing::AllOf;
  using ::testing::HasSubstr;
  using ::testing::Not;
  EXPECT_EQ(ComputeMode({false, false, true, true, false}).slower_options(), "");
  // bfloat16 is fast on oneDNN's bfloat16 kernels, in either layout.
  EXPECT_EQ(ComputeMode({true, false, true, true, true}).slower_options(), "");
  EXPECT_EQ(ComputeMode({true, true, true, true, true}).slower_options(), "");
  EXPECT_THAT(ComputeMode({true, false, true, true, false}).slower_options(),
              AllOf(HasSubstr("--mixed-precision"), HasSubstr("without bfloat16 instructions"),
                    Not(HasSubstr("--channels-last"))));
  EXPECT_THAT(ComputeMode({false, true, true, true, true}).slower_options(),
              AllOf(HasSubstr("--channels-last"), HasSubstr("NCHW"),
                    Not(HasSubstr("--mixed-precision"))));
  EXPECT_THAT(ComputeMode({true, true, false, true, false}).slower_options(),
              AllOf(HasSubstr("--mixed-precision"), HasSubstr("; --channels-last")));
  // Nothing on a GPU, where both options are meant to be fast.
  EXPECT_EQ(ComputeMode({true, true, true, false, false}).slower_options(), "");
}

TEST(Report, Base64KnownVectors) {
  // RFC 4648 test vectors.
  auto b = [](const std::string& s) { return base64(std::vector<uint8_t>(s.begin(), s.end())); };
  EXPECT_EQ(b(""), "");
  EXPECT_EQ(b("f"), "Zg==");
  EXPECT_EQ(b("fo"), "Zm8=");
  EXPECT_EQ(b("foo"), "Zm9v");
  EXPECT_EQ(b("foob"), "Zm9vYg==");
  EXPECT_EQ(b("fooba"), "Zm9vYmE=");
  EXPECT_EQ(b("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64({0xff, 0xfe, 0x00}), "//4A");
}

TEST(Report, EscapesUserText) {
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST(Report, LineChartHasOnePointPerValueAndTheMarker) {
  Series s{"loss", "#123456", {1, 2, 3, 4}, {0.9, 0.5, 0.4, 0.35}};
  Series t{"other", "#654321", {1, 2, 3, 4}, {0.8, 0.6, 0.5, 0.45}, true};
  std::string svg = svg_line_chart({s, t}, "Loss <x>", "epoch", "loss", 400, 300, 2.5, "best");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_EQ(count(svg, "<polyline"), 2);
  EXPECT_EQ(count(svg, "<circle"), 8);
  EXPECT_NE(svg.find("Loss &lt;x&gt;"), std::string::npos);
  EXPECT_NE(svg.find("class='marker'"), std::string::npos);
  EXPECT_NE(svg.find("stroke-dasharray='6 4'"), std::string::npos);
  // Every plotted coordinate lies inside the plot frame.
  std::regex pt("cx='([0-9.]+)' cy='([0-9.]+)'");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), pt); it != std::sregex_iterator(); ++it) {
    double x = std::stod((*it)[1]), y = std::stod((*it)[2]);
    EXPECT_GE(x, 60);
    EXPECT_LE(x, 400 - 16 + 0.1);
    EXPECT_GE(y, 34 - 0.1);
    EXPECT_LE(y, 300 - 46 + 0.1);
  }
}

// The legend box avoids the lines: a rising curve leaves the bottom right free, a falling one
// the top right (the default corner).
TEST(Report, LegendGoesWhereItHidesNoLine) {
  auto legend_box = [](const std::string& svg) {
    std::smatch m;
    std::regex box("<rect x='([0-9.]+)' y='([0-9.]+)' width='([0-9.]+)' height='([0-9.]+)' class='legendbox'");
    EXPECT_TRUE(std::regex_search(svg, m, box));
    return std::array<double, 4>{std::stod(m[1]), std::stod(m[2]), std::stod(m[3]), std::stod(m[4])};
  };
  auto hides = [](const std::string& svg, const std::array<double, 4>& b) {
    int n = 0;
    std::regex pt("cx='([0-9.]+)' cy='([0-9.]+)'");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), pt); it != std::sregex_iterator(); ++it) {
      double x = std::stod((*it)[1]), y = std::stod((*it)[2]);
      n += x >= b[0] && x <= b[0] + b[2] && y >= b[1] && y <= b[1] + b[3];
    }
    return n;
  };
  std::vector<double> x, up, down;
  for (int i = 0; i <= 20; ++i) {
    x.push_back(i);
    up.push_back(i / 20.0);
    down.push_back(1 - i / 20.0);
  }
  const std::string rising = svg_line_chart({{"acc", "#111111", x, up}}, "t", "x", "y", 400, 300);
  const auto br = legend_box(rising);
  EXPECT_GT(br[1], 300 / 2.0) << "bottom half for a rising line";
  EXPECT_GT(br[0], 400 / 2.0) << "right half for a rising line";
  EXPECT_EQ(hides(rising, br), 0);
  const std::string falling = svg_line_chart({{"loss", "#111111", x, down}}, "t", "x", "y", 400, 300);
  const auto tr = legend_box(falling);
  EXPECT_LT(tr[1], 300 / 2.0);
  EXPECT_GT(tr[0], 400 / 2.0);
  EXPECT_EQ(hides(falling, tr), 0);
}

TEST(Report, RenderHasEverySectionAndEmbedsImages) {
  ReportData d;
  d.title = "run";
  d.summary = {{"device", "cpu"}};
  d.history = {{1, 0.7, 0.6, 0.6, 0.65, 0.1, 0.2, 1.5}, {2, 0.5, 0.45, 0.8, 0.85, 0.4, 0.5, 1.4}};
  d.sweep.thresholds = {0, 0.5, 1};
  d.sweep.hamming = {0.5, 0.9, 0.5};
  d.sweep.zero_one = {0.1, 0.7, 0.1};
  d.sweep.best_threshold = 0.5;
  ReportImage im{{0xff, 0xd8, 0xff}, "1.jpg", {"can", "carton"}, {1, 0}};
  d.train_images = {im};
  d.valid_images = {im, im};
  std::string html = render_report(d);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  for (const char* section : {"Training curves", "Metrics vs threshold", "Training images",
                              "Validation predictions"})
    EXPECT_NE(html.find(section), std::string::npos) << section;
  EXPECT_EQ(count(html, "<svg"), 3);
  EXPECT_EQ(count(html, "src='data:image/jpeg;base64,/9j/'"), 3);
  EXPECT_EQ(count(html, "class='lab ok'>can"), 3);
  EXPECT_EQ(count(html, "class='lab bad'>carton"), 3);
  EXPECT_EQ(html.find("http://"), std::string::npos) << "the page must not load anything";
  EXPECT_EQ(html.find("https://"), std::string::npos);
}

}  // namespace
}  // namespace cudl::train
