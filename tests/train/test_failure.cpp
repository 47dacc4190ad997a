// train/failure.h: what fridge_train and fridge_eval print for the error that ended them.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <stdexcept>

#include "tensor/error.h"
#include "tests/models/weights_test_util.h"
#include "train/failure.h"

namespace cudl::train {
namespace {

// The exception a throwing expression leaves, for the report to describe.
template <class F>
std::exception_ptr thrown(F f) {
  try {
    f();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

std::string report(const std::exception_ptr& p, const std::string& checkpoint = "") {
  try {
    std::rethrow_exception(p);
  } catch (const std::exception& e) {
    return failure_report("prog", e, checkpoint);
  }
}

TEST(FailureReport, OtherErrorsAreOneLineWithoutSourceLocation) {
  EXPECT_EQ(report(thrown([] { throw std::runtime_error("disk full"); })),
            "prog: error: disk full\n");
  // cudl's errors: the message alone (what() starts with "folder/file.cpp:line: ").
  const auto p = thrown([] { CUDL_THROW("labels.csv line 3: no image a.jpg"); });
  EXPECT_EQ(report(p), "prog: error: labels.csv line 3: no image a.jpg\n");
  // No GPU hint and no --resume hint for a failure that is not the GPU backend's.
  EXPECT_EQ(report(p, "out/checkpoint.h5"), "prog: error: labels.csv line 3: no image a.jpg\n");
}

TEST(FailureReport, GpuOutOfMemorySaysWhatNeedsLessMemory) {
  const auto p = thrown([] { CUDL_THROW_DEVICE(true, "CUDA out of memory on cuda:0"); });
  try {
    std::rethrow_exception(p);
  } catch (const DeviceError& e) {
    EXPECT_TRUE(e.out_of_memory());
  }
  EXPECT_EQ(report(p),
            "prog: error: CUDA out of memory on cuda:0\n"
            "prog: hint: the GPU's memory ran out; a smaller --bs needs less of it, "
            "--mixed-precision stores activations in bfloat16 (half the bytes), and --device cpu "
            "runs on the CPU\n");
}

TEST(FailureReport, OtherGpuFailuresPointToTheCpuAndTheCheckpoint) {
  const auto p = thrown([] {
    CUDL_THROW_DEVICE(false, "cudaStreamSynchronize(s) failed: cudaErrorIllegalAddress");
  });
  try {
    std::rethrow_exception(p);
  } catch (const DeviceError& e) {
    EXPECT_FALSE(e.out_of_memory());
  }
  const std::string first =
      "prog: error: cudaStreamSynchronize(s) failed: cudaErrorIllegalAddress\n"
      "prog: hint: this failed in the GPU backend (CUDA, cuBLAS or cuDNN); --device cpu runs "
      "the same computation on the CPU\n";
  EXPECT_EQ(report(p), first);
  EXPECT_EQ(report(p, "run1/checkpoint.h5"),
            first + "prog: hint: --resume (with the same --out) continues from "
                    "run1/checkpoint.h5, the last checkpoint of this run\n");
}

TEST(FailureReport, OnlyACheckpointWrittenDuringTheRunIsOffered) {
  testing::ScratchDir dir;
  const std::string path = dir / "checkpoint.h5";
  const auto before = std::filesystem::file_time_type::clock::now() - std::chrono::seconds(1);
  EXPECT_EQ(written_since(path, before), "");  // none yet
  std::ofstream(path) << "x";
  EXPECT_EQ(written_since(path, before), path);
  // One left by an earlier run (written before this one started) is not this run's.
  const auto later = std::filesystem::last_write_time(path) + std::chrono::seconds(1);
  EXPECT_EQ(written_since(path, later), "");
}

}  // namespace
}  // namespace cudl::train
