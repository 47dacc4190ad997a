// Profiler (tensor/profiler.h): ranges are counted per name only while it runs, the names are
// the leaf modules' forwards, the backward nodes and the optimiser's step, and the times add
// up to no more than the wall time of the profiled work.
#include <gtest/gtest.h>

#include <chrono>
#include <map>

#include "layers/layers.h"
#include "optim/optim.h"
#include "tensor/ops.h"
#include "tensor/profiler.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

TEST(Profiler, CountsLeafModulesBackwardNodesAndTheOptimiserStep) {
  auto model = sequential({std::make_shared<Conv2d>(3, 4, 3, Conv2dOptions().padding(1)),
                           std::make_shared<ReLU>(), std::make_shared<Conv2d>(4, 2, 1),
                           std::make_shared<Flatten>()});
  AdamW opt(model->parameters());
  Generator g(1);
  Tensor x = empty({2, 3, 8, 8});
  uniform_(x, -1, 1, &g);
  auto step = [&] {
    opt.zero_grad();
    sum((*model)(x)).backward();
    opt.step();
  };
  step();  // not profiled
  profiler_start(Device::cpu());
  EXPECT_TRUE(profiler_running());
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) step();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<ProfileEntry> entries = profiler_stop();
  EXPECT_FALSE(profiler_running());
  std::map<std::string, ProfileEntry> by;
  double total = 0;
  for (const ProfileEntry& e : entries) {
    by[e.name] = e;
    total += e.seconds;
  }
  EXPECT_EQ(by["Conv2d.forward"].calls, 6);
  EXPECT_EQ(by["ReLU.forward"].calls, 3);
  EXPECT_EQ(by["Flatten.forward"].calls, 3);
  EXPECT_EQ(by["Conv2dBackward"].calls, 6);
  EXPECT_EQ(by["AdamW.step"].calls, 3);
  EXPECT_EQ(by.count("Sequential.forward"), 0u) << "a module with children opens no range";
  EXPECT_GT(by["Conv2d.forward"].seconds, 0.0);
  EXPECT_LE(total, wall);
  for (size_t i = 1; i < entries.size(); ++i) EXPECT_GE(entries[i - 1].seconds, entries[i].seconds);
  const std::string table = format_profile(entries, 3);
  EXPECT_NE(table.find("Conv2dBackward"), std::string::npos) << table;
  EXPECT_NE(table.find("all ranges"), std::string::npos) << table;
}

TEST(Profiler, RecordsNothingWhenNotRunningAndRefusesTwoAtOnce) {
  { ProfileRange r("outside"); }
  profiler_start(Device::cpu());
  EXPECT_ERROR_HAS(profiler_start(Device::cpu()), "already running");
  { ProfileRange r("inside"); }
  std::vector<ProfileEntry> entries = profiler_stop();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].name, "inside");
  EXPECT_EQ(entries[0].calls, 1);
  EXPECT_ERROR_HAS(profiler_stop(), "no profiler");
}

}  // namespace
}  // namespace cudl
