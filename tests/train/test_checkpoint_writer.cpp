// CheckpointWriter (train/checkpoint_writer.h): the file holds the tensors as they were at
// submit() even when training changes them meanwhile, checkpoints land in order, a failed write
// is reported by the next wait(), and HDF5 calls from the training thread during a background
// write are safe.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>

#include "tensor/ops.h"
#include "tests/common/test_util.h"
#include "train/checkpoint_writer.h"

namespace cudl::train {
namespace {

using testing::all_close;

std::string temp_path(const char* name) {
  return (std::string(::testing::TempDir()) + "cudl_ckw_" + name);
}

Checkpoint make(Tensor w, Tensor m, int64_t epoch) {
  Checkpoint c;
  c.model = {{"layer.weight", w}};
  c.optimizer = {{"state.layer.weight.exp_avg", m}};
  c.epoch = epoch;
  c.rng_seed = 5;
  c.rng_offset = 77;
  return c;
}

TEST(CheckpointWriter, WritesTheTensorsAsTheyWereAtSubmit) {
  const std::string path = temp_path("a.h5");
  Tensor w = full({1000, 100}, 1.5), m = full({1000, 100}, -2.0);
  CheckpointWriter writer;
  writer.submit(path, make(w, m, 3));
  w.fill_(9.0);  // training goes on while the file is written
  m.fill_(9.0);
  writer.submit(path, make(w, m, 4));  // waits for epoch 3's write, then writes epoch 4
  w.fill_(0.0);
  writer.wait();
  Checkpoint c = load_checkpoint(path);
  EXPECT_EQ(c.epoch, 4);
  EXPECT_EQ(c.rng_offset, 77u);
  ASSERT_EQ(c.model.size(), 1u);
  EXPECT_TRUE(all_close(c.model[0].second, full({1000, 100}, 9.0), 0, 0));
  EXPECT_TRUE(all_close(c.optimizer[0].second, full({1000, 100}, 9.0), 0, 0));
  std::remove(path.c_str());
}

TEST(CheckpointWriter, AFailedWriteIsReportedByWait) {
  CheckpointWriter writer;
  writer.submit("/nonexistent-dir/c.h5", make(ones({4}), ones({4}), 1));
  EXPECT_ERROR_HAS(writer.wait(), "/nonexistent-dir/");
  writer.wait();  // reported once
}

TEST(CheckpointWriter, OtherHdf5CallsDuringABackgroundWriteAreSafe) {
  const std::string a = temp_path("b.h5"), b = temp_path("c.h5");
  CheckpointWriter writer;
  Tensor big = full({2000, 500}, 3.0);
  for (int i = 0; i < 3; ++i) {
    writer.submit(a, make(big, big, i));
    save_weights(b, {{"x", full({300}, static_cast<double>(i))}}, WeightsMeta());
    WeightsFile f = load_weights(b);
    EXPECT_TRUE(all_close(f.tensors[0].second, full({300}, static_cast<double>(i)), 0, 0));
  }
  writer.wait();
  EXPECT_EQ(load_checkpoint(a).epoch, 2);
  std::remove(a.c_str());
  std::remove(b.c_str());
}

TEST(CheckpointWriter, ANewerCheckpointReplacesOneStillWaiting) {
  const std::string path = temp_path("d.h5");
  std::atomic<bool> release{false}, blocked{false};
  testing_hooks::set_atomic_write_hook([&](const std::string& stage, const std::string&) {
    if (stage != "written") return;
    blocked = true;
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  {
    CheckpointWriter writer;
    writer.submit(path, make(full({10}, 1.0), ones({10}), 1));  // being written, held
    while (!blocked) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    writer.submit(path, make(full({10}, 2.0), ones({10}), 2));  // waits
    writer.submit(path, make(full({10}, 3.0), ones({10}), 3));  // replaces epoch 2
    release = true;
    writer.wait();
    EXPECT_EQ(writer.written(), 2);
    EXPECT_EQ(writer.replaced(), 1);
  }
  testing_hooks::set_atomic_write_hook(nullptr);
  Checkpoint c = load_checkpoint(path);
  EXPECT_EQ(c.epoch, 3);
  EXPECT_TRUE(all_close(c.model[0].second, full({10}, 3.0), 0, 0));
  std::remove(path.c_str());
}

TEST(CheckpointWriter, SnapshotsAreIndependentCopies) {
  Tensor t = full({3}, 2.0);
  NamedTensors s = host_snapshot({{"t", t}});
  t.fill_(5.0);
  EXPECT_TRUE(all_close(s[0].second, full({3}, 2.0), 0, 0));
}

}  // namespace
}  // namespace cudl::train
