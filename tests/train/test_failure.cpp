// train/failure.h: what fridge_train and fridge_eval print for the error that ended them, and
// fit()'s record of the checkpoint they offer to --resume.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "models/weights_io.h"
#include "tensor/error.h"
#include "tests/models/weights_test_util.h"
#include "train/failure.h"
#include "train/learner.h"

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

std::string report(const std::exception_ptr& p, const std::string& checkpoint = "",
                   bool allow_empty = false) {
  try {
    std::rethrow_exception(p);
  } catch (const std::exception& e) {
    return failure_report("prog", e, checkpoint, allow_empty);
  }
}

// The line a report with a checkpoint ends with.
const std::string kResumeHint =
    "prog: hint: --resume (with the same --out) continues from run1/checkpoint.h5, the last "
    "checkpoint of this run\n";

TEST(FailureReport, OtherErrorsAreOneLineWithoutSourceLocation) {
  EXPECT_EQ(report(thrown([] { throw std::runtime_error("disk full"); })),
            "prog: error: disk full\n");
  // cudl's errors: the message alone (what() starts with "folder/file.cpp:line: ").
  const auto p = thrown([] { CUDL_THROW("labels.csv line 3: no image a.jpg"); });
  EXPECT_EQ(report(p), "prog: error: labels.csv line 3: no image a.jpg\n");
  // No GPU hint and no --resume hint for a failure that is not the GPU backend's.
  EXPECT_EQ(report(p, "out/checkpoint.h5"), "prog: error: labels.csv line 3: no image a.jpg\n");
}

TEST(FailureReport, AFullDiskSaysSoAndPointsToTheCheckpoint) {
  const auto p = thrown([] {
    CUDL_THROW("run1/checkpoint.h5: cannot write dataset 'w': can't write data (file write "
               "failed: No space left on device)");
  });
  const std::string first =
      "prog: error: run1/checkpoint.h5: cannot write dataset 'w': can't write data (file write "
      "failed: No space left on device)\n"
      "prog: hint: a file could not be written (No space left on device); free some space, or "
      "give an --out on another file system\n";
  EXPECT_EQ(report(p), first);
  EXPECT_EQ(report(p, "run1/checkpoint.h5"), first + kResumeHint);
}

TEST(FailureReport, BadDataPointsToSkipBadAndEmptyLabelsToAllowEmpty) {
  auto bad = [](BadDataError::Kind kind) {
    return thrown([kind] { throw BadDataError("labels.csv:3: the problem", "f.cpp", 1, kind); });
  };
  auto report_of = [](const std::exception_ptr& p, bool allow_empty) {
    return report(p, "run1/checkpoint.h5", allow_empty);
  };
  const std::string error = "prog: error: labels.csv:3: the problem\n";
  const std::string skip =
      "prog: hint: --skip-bad skips bad label rows and unreadable images with a warning and goes "
      "on with the rest\n";
  const std::string empty =
      "prog: hint: --allow-empty reads a row with an empty labels field as an image with none "
      "of the classes\n";
  for (bool allow_empty : {false, true}) {
    EXPECT_EQ(report_of(bad(BadDataError::Kind::kRow), allow_empty), error + skip);
    EXPECT_EQ(report_of(bad(BadDataError::Kind::kImage), allow_empty), error + skip);
  }
  // --allow-empty only where the program has it (fridge_train; fridge_eval reads the model's).
  EXPECT_EQ(report_of(bad(BadDataError::Kind::kRowWithoutLabels), false), error + skip);
  EXPECT_EQ(report_of(bad(BadDataError::Kind::kRowWithoutLabels), true), error + empty + skip);
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
  EXPECT_EQ(report(p, "run1/checkpoint.h5"), first + kResumeHint);
}

// fit()'s record of the run's checkpoint, which fridge_train offers to --resume after a GPU
// failure: the one this run wrote last, else the one it resumed from; never an earlier run's.
// The runs fail where they write history.csv (its temporary file's name is taken by a folder):
// after an epoch, before that epoch's checkpoint.
TrainOptions tiny_run(const std::string& out) {
  TrainOptions o;
  o.out = out;
  o.demo_images = 20;
  o.demo_height = 48;
  o.size = 32;
  o.bs = 8;
  o.epochs = 1;
  o.device = "cpu";
  o.threads = 1;
  o.workers = 0;
  o.progress = false;
  return o;
}

// The record of a fit() that fails ("stale" going in: fit() must set it either way).
std::string record_of_failed_fit(const TrainOptions& o, std::ostream& log) {
  std::string checkpoint = "stale";
  EXPECT_THROW(fit(o, log, &checkpoint), Error);
  return checkpoint;
}

void block_history_writes(const std::string& out) {
  std::filesystem::create_directories(out + "/history.csv.tmp." + std::to_string(::getpid()));
}

TEST(FitRecord, IsTheCheckpointTheRunWrote) {
  testing::ScratchDir dir;
  const std::string out = dir / "run";
  std::ostringstream log;
  std::string checkpoint = "stale";
  fit(tiny_run(out), log, &checkpoint);
  EXPECT_EQ(checkpoint, out + "/checkpoint.h5");
}

TEST(FitRecord, IsNotAnEarlierRunsCheckpoint) {
  testing::ScratchDir dir;
  const std::string out = dir / "run";
  std::ostringstream log;
  fit(tiny_run(out), log);
  // Even with a modification time after this run's start (a clock set back since, or another
  // machine's clock on a network file system): not written by this run, so not offered.
  const std::string path = out + "/checkpoint.h5";
  std::filesystem::last_write_time(
      path, std::filesystem::file_time_type::clock::now() + std::chrono::hours(1));
  block_history_writes(out);
  EXPECT_EQ(record_of_failed_fit(tiny_run(out), log), "");
}

TEST(FitRecord, IsTheCheckpointTheRunResumedFrom) {
  testing::ScratchDir dir;
  const std::string out = dir / "run";
  std::ostringstream log;
  fit(tiny_run(out), log);
  block_history_writes(out);
  TrainOptions o = tiny_run(out);
  o.resume = true;
  o.epochs = 2;
  // Fails after epoch 2, before its checkpoint.
  EXPECT_EQ(record_of_failed_fit(o, log), out + "/checkpoint.h5");
  EXPECT_NE(log.str().find("Resuming after epoch 1 of 2"), std::string::npos) << log.str();
}

TEST(FitRecord, IsNotACheckpointThatFailedToBeWritten) {
  testing::ScratchDir dir;
  const std::string out = dir / "run";
  std::ostringstream log;
  // A folder where the checkpoint goes: its write (by the writer's thread) fails, and fit()
  // reports that failure; only a checkpoint on disk is recorded.
  std::filesystem::create_directories(out + "/checkpoint.h5/taken");
  EXPECT_EQ(record_of_failed_fit(tiny_run(out), log), "");
}

TEST(FitRecord, IsTheLastCheckpointWrittenBeforeAFailure) {
  testing::ScratchDir dir;
  const std::string out = dir / "run";
  std::ostringstream log;
  TrainOptions o = tiny_run(out);
  o.epochs = 3;
  // The report's temporary file is written last, after the final epoch's checkpoint was
  // submitted: the failure comes while that write may still be running.
  std::filesystem::create_directories(out + "/report.html.tmp." + std::to_string(::getpid()));
  const std::string checkpoint = record_of_failed_fit(o, log);
  EXPECT_EQ(checkpoint, out + "/checkpoint.h5");
  EXPECT_EQ(load_checkpoint(out + "/checkpoint.h5").epoch, 3);
}

}  // namespace
}  // namespace cudl::train
