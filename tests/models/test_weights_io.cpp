// The HDF5 weights and checkpoint files (models/weights_io.h), the name/shape matching, the
// architecture specs and the float16 conversions. No PyTorch needed; test_weights_parity.cpp
// covers the files PyTorch writes and reads.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include <cmath>
#include <set>

#include "models/float16.h"
#include "models/hdf5_util.h"
#include "models/resnet_spec.h"
#include "models/weights_import.h"
#include "models/weights_io.h"
#include "tests/common/test_util.h"
#include "tests/models/weights_test_util.h"

namespace cudl {
namespace {

using testing::bit_equal;
using testing::error_of;
using testing::same_tensors;
using testing::ScratchDir;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A small state dict in a deliberately non-alphabetical order, with a 4-D float tensor, an
// int64 scalar counter, an empty tensor and negative zero.
NamedTensors sample_tensors(uint64_t seed) {
  Generator g(seed);
  NamedTensors t;
  t.emplace_back("conv1.weight", randn({4, 3, 3, 3}, {}, &g));
  t.emplace_back("bn1.weight", rand({4}, {}, &g));
  t.emplace_back("bn1.num_batches_tracked", scalar_tensor(static_cast<double>(seed + 7), kInt64));
  t.emplace_back("layer1.0.conv1.weight", randn({4, 4, 1, 1}, {}, &g));
  t.emplace_back("empty", zeros({0, 5}));
  t.emplace_back("a.neg_zero", from_vector<float>({-0.0f, 1e-40f, 3.4e38f}, {3}));
  return t;
}

WeightsMeta full_meta() {
  WeightsMeta m;
  m.architecture = "fastai_resnet18";
  m.class_names = std::vector<std::string>{"can", "carton", "milk_bottle", "water_bottle"};
  m.input_size = std::vector<int64_t>{3, 300, 300};
  m.norm_mean = std::vector<double>{0.485, 0.456, 0.406};
  m.norm_std = std::vector<double>{0.229, 0.224, 0.225};
  m.threshold = 0.45;
  m.source = "unit test \xc3\xa9";  // UTF-8 survives
  return m;
}

TEST(WeightsIO, RoundTripKeepsTensorsOrderAndEveryAttribute) {
  ScratchDir dir;
  NamedTensors t = sample_tensors(1);
  save_weights(dir / "w.h5", t, full_meta());
  WeightsFile f = load_weights(dir / "w.h5");
  EXPECT_EQ(f.format, kWeightsFormat);
  EXPECT_EQ(f.format_version, kWeightsFormatVersion);
  EXPECT_TRUE(same_tensors(f.tensors, t));  // same names, order, dtypes, shapes and bits
  WeightsMeta m = full_meta();
  EXPECT_EQ(f.meta.architecture, m.architecture);
  EXPECT_EQ(f.meta.class_names, m.class_names);
  EXPECT_EQ(f.meta.input_size, m.input_size);
  EXPECT_EQ(f.meta.norm_mean, m.norm_mean);
  EXPECT_EQ(f.meta.norm_std, m.norm_std);
  EXPECT_EQ(f.meta.threshold, m.threshold);
  EXPECT_EQ(f.meta.source, m.source);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"w.h5"});  // no temporary file left
}

TEST(WeightsIO, UnsetAttributesStayUnset) {
  ScratchDir dir;
  save_weights(dir / "w.h5", sample_tensors(2));
  WeightsFile f = load_weights(dir / "w.h5");
  EXPECT_FALSE(f.meta.architecture || f.meta.class_names || f.meta.input_size || f.meta.norm_mean ||
               f.meta.norm_std || f.meta.threshold || f.meta.source);
  WeightsMeta empty_classes;
  empty_classes.class_names = std::vector<std::string>{};
  save_weights(dir / "e.h5", sample_tensors(2), empty_classes);
  EXPECT_EQ(load_weights(dir / "e.h5").meta.class_names, std::vector<std::string>{});
}

TEST(WeightsIO, DatasetsSitAtTheDottedPathsWithTorchLayoutAndTypes) {
  ScratchDir dir;
  save_weights(dir / "w.h5", sample_tensors(3));
  h5::H5File f = h5::H5File::open_read(dir / "w.h5");
  EXPECT_TRUE(f.is_group("layer1/0/conv1"));
  EXPECT_TRUE(f.exists("layer1/0/conv1/weight"));
  EXPECT_FALSE(f.exists("layer1.0.conv1.weight"));
  Tensor w = f.read_tensor("conv1/weight");
  EXPECT_EQ(w.shape(), (Shape{4, 3, 3, 3}));
  EXPECT_EQ(f.read_tensor("bn1/num_batches_tracked").dtype(), kInt64);
  EXPECT_EQ(f.read_tensor("bn1/num_batches_tracked").shape(), Shape{});
  EXPECT_EQ(f.read_string_attr("format"), "cudl-weights");
}

TEST(WeightsIO, Float16DatasetsLoadAsFloat32RoundedOnce) {
  ScratchDir dir;
  NamedTensors t = sample_tensors(4);
  t.pop_back();  // 3.4e38 does not fit float16; tested below
  SaveOptions fp16;
  fp16.fp16 = true;
  save_weights(dir / "h.h5", t, {}, fp16);
  WeightsFile f = load_weights(dir / "h.h5");
  ASSERT_EQ(f.tensors.size(), t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    const Tensor& orig = t[i].second;
    const Tensor& got = f.tensors[i].second;
    ASSERT_EQ(got.dtype(), orig.dtype()) << t[i].first;
    if (orig.dtype() == kInt64) {
      EXPECT_TRUE(bit_equal(got, orig)) << t[i].first << " (int64 counters are never narrowed)";
      continue;
    }
    std::vector<float> o = orig.to_vector<float>(), g = got.to_vector<float>();
    for (size_t k = 0; k < o.size(); ++k)
      ASSERT_EQ(float_to_bits(g[k]), float_to_bits(half_to_float(float_to_half(o[k]))))
          << t[i].first << "[" << k << "]";
  }
  // Half the bytes: a 400 KB tensor takes about 200 KB more than the file's own metadata.
  NamedTensors big{{"w", ones({1000, 100})}};
  save_weights(dir / "big32.h5", big);
  save_weights(dir / "big16.h5", big, {}, fp16);
  auto s32 = std::filesystem::file_size(dir / "big32.h5");
  auto s16 = std::filesystem::file_size(dir / "big16.h5");
  EXPECT_NEAR(static_cast<double>(s32 - s16), 200000.0, 1000.0) << s32 << " vs " << s16;
}

// The overflow is found while the data is being written, i.e. after the temporary file
// exists: the failure must remove it and leave the previous file as it was.
TEST(WeightsIO, Float16OverflowMidWriteKeepsThePreviousFile) {
  ScratchDir dir;
  NamedTensors previous = sample_tensors(8);
  save_weights(dir / "h.h5", previous);
  SaveOptions fp16;
  fp16.fp16 = true;
  NamedTensors t = sample_tensors(5);  // its last tensor holds 3.4e38
  std::string msg = error_of([&] { save_weights(dir / "h.h5", t, {}, fp16); });
  EXPECT_TRUE(contains(msg, "h.h5: tensor 'a.neg_zero'") && contains(msg, "float16")) << msg;
  EXPECT_FALSE(contains(msg, ".tmp-")) << "errors name the target, not the temporary file";
  EXPECT_TRUE(same_tensors(load_weights(dir / "h.h5").tensors, previous));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"h.h5"});  // the temporary file is gone
}

TEST(WeightsIO, BadNamesAndDtypesAreRefusedBeforeWriting) {
  ScratchDir dir;
  auto refuse = [&](NamedTensors t, const std::string& expect) {
    std::string msg = error_of([&] { save_weights(dir / "x.h5", t); });
    EXPECT_TRUE(contains(msg, expect)) << msg;
    EXPECT_TRUE(dir.entries().empty());
  };
  Tensor x = zeros({2});
  refuse({{"a..b", x}}, "empty part");
  refuse({{".a", x}}, "empty part");
  refuse({{"a/b", x}}, "contains '/'");
  refuse({{"", x}}, "empty name");
  refuse({{"a.b", x}, {"a.b", x}}, "appears twice");
  refuse({{"a.b", x}, {"a.b.c", x}}, "both a dataset and the group");
  refuse({{"d", zeros({2}, kFloat64)}}, "float64");
  refuse({{"u", zeros({2}, kUInt8)}}, "uint8");
}

TEST(WeightsIO, LoadErrorsNameTheFileAndTheProblem) {
  ScratchDir dir;
  std::string msg = error_of([&] { load_weights(dir / "missing.h5"); });
  EXPECT_TRUE(contains(msg, "missing.h5") && contains(msg, "No such file")) << msg;

  {
    std::FILE* f = std::fopen((dir / "text.h5").c_str(), "w");
    std::fputs("not hdf5 at all\n", f);
    std::fclose(f);
  }
  msg = error_of([&] { load_weights(dir / "text.h5"); });
  EXPECT_TRUE(contains(msg, "text.h5: cannot open as an HDF5 file")) << msg;
  {
    std::FILE* f = std::fopen((dir / "model.pth").c_str(), "w");
    std::fputs("PK\x03\x04 a zip archive", f);
    std::fclose(f);
  }
  msg = error_of([&] { load_weights(dir / "model.pth"); });
  EXPECT_TRUE(contains(msg, "convert it with weights_import")) << msg;

  // Another program's HDF5 file, and one from a future cudl.
  {
    h5::H5File f = h5::H5File::create(dir / "other.h5");
    f.write_string_attr("format", "keras");
    f.close();
    h5::H5File g = h5::H5File::create(dir / "future.h5");
    g.write_string_attr("format", "cudl-weights");
    g.write_int64s_attr("format_version", {99}, true);
    g.close();
  }
  msg = error_of([&] { load_weights(dir / "other.h5"); });
  EXPECT_TRUE(contains(msg, "keras") && contains(msg, "not a cudl weights file")) << msg;
  msg = error_of([&] { load_weights(dir / "future.h5"); });
  EXPECT_TRUE(contains(msg, "version 99")) << msg;
}

TEST(WeightsIO, ReplacingAFileLeavesOnlyTheNewOne) {
  ScratchDir dir;
  NamedTensors first = sample_tensors(6), second = sample_tensors(7);
  save_weights(dir / "w.h5", first);
  save_weights(dir / "w.h5", second);  // replaces it
  EXPECT_TRUE(same_tensors(load_weights(dir / "w.h5").tensors, second));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"w.h5"});
}

// A temporary file left by a process killed during a write is removed by the next write of the
// same file once untouched for two minutes; one of a process that still runs (this one, init)
// stays, a recent one stays, and other files too.
TEST(WeightsIO, AWriteRemovesTheTemporaryFileOfAKilledWriter) {
  ScratchDir dir;
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);  // a process id that no longer runs
  const std::string dead = ".w.h5.tmp-" + std::to_string(child) + "-0";
  const std::string recent = ".w.h5.tmp-" + std::to_string(child) + "-1";
  const std::string mine = ".w.h5.tmp-" + std::to_string(::getpid()) + "-7";
  const std::string other = ".other.h5.tmp-" + std::to_string(child) + "-0";
  for (const std::string& name : {dead, recent, mine, std::string(".w.h5.tmp-1-0"), other}) {
    std::ofstream(dir / name) << "partial";
    if (name != recent) {
      std::filesystem::last_write_time(
          dir / name, std::filesystem::file_time_type::clock::now() - std::chrono::minutes(3));
    }
  }
  save_weights(dir / "w.h5", sample_tensors(6));
  std::vector<std::string> want{other, ".w.h5.tmp-1-0", recent, mine, "w.h5"};
  std::sort(want.begin(), want.end());
  std::vector<std::string> got = dir.entries();
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
}

// ---- matching -----------------------------------------------------------------------------------

std::vector<TensorSpec> small_spec() {
  return {{"conv.weight", {4, 3, 3, 3}, kFloat32},
          {"bn.weight", {4}, kFloat32},
          {"bn.num_batches_tracked", {}, kInt64},
          {"fc.weight", {2, 4}, kFloat32}};
}

TEST(MatchWeights, ReturnsTensorsInTheModelsOrder) {
  NamedTensors t{{"fc.weight", zeros({2, 4})},
                 {"bn.num_batches_tracked", scalar_tensor(3, kInt64)},
                 {"conv.weight", zeros({4, 3, 3, 3})},
                 {"bn.weight", ones({4})}};
  NamedTensors m = match_weights(t, small_spec());
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].first, "conv.weight");
  EXPECT_EQ(m[3].first, "fc.weight");
}

TEST(MatchWeights, ListsEveryMismatchInOneError) {
  NamedTensors t{{"conv.weight", zeros({4, 3, 1, 1})},   // wrong shape
                 {"bn.num_batches_tracked", zeros({})},  // wrong dtype
                 {"fc.weight", zeros({2, 4})},           // fine
                 {"extra.bias", zeros({7})},             // unexpected
                 {"extra2", zeros({1})}};                // unexpected
  std::string msg = error_of([&] { match_weights(t, small_spec(), {}, "'f.h5'"); });
  EXPECT_TRUE(contains(msg,
                       "'f.h5' does not match: 5 problems (1 missing, 2 unexpected, 1 wrong "
                       "shape, 1 wrong dtype)"))
      << msg;
  EXPECT_TRUE(contains(msg, "missing: bn.weight float32 (4,)")) << msg;
  EXPECT_TRUE(contains(msg, "unexpected: extra.bias float32 (7,)")) << msg;
  EXPECT_TRUE(contains(msg, "unexpected: extra2")) << msg;
  EXPECT_TRUE(contains(msg, "wrong shape: conv.weight: expected (4, 3, 3, 3), found (4, 3, 1, 1)"))
      << msg;
  EXPECT_TRUE(contains(msg, "wrong dtype: bn.num_batches_tracked: expected int64, found float32"))
      << msg;
}

TEST(MatchWeights, PrefixesIgnorePatternsAndRequiredPrefix) {
  // A backbone file (no prefix, with an fc) into a model whose backbone lives under "body.".
  std::vector<TensorSpec> model{{"body.conv.weight", {2}, kFloat32},
                                {"body.bn.weight", {2}, kFloat32},
                                {"head.weight", {3}, kFloat32}};
  NamedTensors file{{"conv.weight", zeros({2})},
                    {"bn.weight", ones({2})},
                    {"fc.weight", zeros({9})},
                    {"fc.bias", zeros({9})}};
  WeightsMapping m;
  m.add_prefix = "body.";
  m.ignore = {"fc.*"};
  m.required_prefix = "body.";
  NamedTensors got = match_weights(file, model, m);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].first, "body.conv.weight");
  EXPECT_EQ(got[1].first, "body.bn.weight");

  // Without the required prefix the head is reported missing; without ignoring fc it is
  // unexpected (named with its file name).
  WeightsMapping strict = m;
  strict.required_prefix.clear();
  strict.ignore.clear();
  std::string msg = error_of([&] { match_weights(file, model, strict); });
  EXPECT_TRUE(contains(msg, "missing: head.weight")) << msg;
  EXPECT_TRUE(contains(msg, "unexpected: body.fc.weight (in the file: fc.weight)")) << msg;

  // Stripping: a notebook body back into a plain backbone.
  NamedTensors body{{"body.conv.weight", zeros({2})}, {"head.x", zeros({1})}};
  WeightsMapping strip;
  strip.strip_prefix = "body.";
  strip.ignore = {"head.*"};
  got = match_weights(body, {{"conv.weight", {2}, kFloat32}}, strip);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, "conv.weight");
}

TEST(MatchWeights, GlobPatterns) {
  EXPECT_TRUE(name_matches("fc.*", "fc.weight"));
  EXPECT_FALSE(name_matches("fc.*", "xfc.weight"));
  EXPECT_TRUE(name_matches("*.num_batches_tracked", "layer1.0.bn1.num_batches_tracked"));
  EXPECT_TRUE(name_matches("layer*.downsample.*", "layer2.0.downsample.1.bias"));
  EXPECT_FALSE(name_matches("layer*.downsample.*", "layer2.0.conv1.weight"));
  EXPECT_TRUE(name_matches("*", ""));
  EXPECT_TRUE(name_matches("a", "a"));
  EXPECT_FALSE(name_matches("a", "ab"));
}

// ---- checkpoints --------------------------------------------------------------------------------

Checkpoint sample_checkpoint(uint64_t seed) {
  Checkpoint c;
  c.model = sample_tensors(seed);
  Generator g(seed + 100);
  c.optimizer.emplace_back("step", scalar_tensor(static_cast<double>(seed * 10), kInt64));
  c.optimizer.emplace_back("exp_avg.conv1.weight", randn({4, 3, 3, 3}, {}, &g));
  c.optimizer.emplace_back("exp_avg_sq.conv1.weight", rand({4, 3, 3, 3}, {}, &g));
  // Optimiser hyper-parameters are float64 and must come back bit for bit.
  c.optimizer.emplace_back("param_groups.0.lr", scalar_tensor(1e-4 / static_cast<double>(seed), kFloat64));
  c.meta.architecture = "fastai_resnet18";
  c.meta.class_names = std::vector<std::string>{"a", "b"};
  c.epoch = static_cast<int64_t>(seed);
  c.rng_seed = 0xfedcba9876543210ull + seed;  // above 2^63: must survive as unsigned
  c.rng_offset = 123456789012345ull * seed;
  c.settings = "{\"lr\": " + std::to_string(seed) + "e-4}";
  return c;
}

::testing::AssertionResult same_checkpoint(const Checkpoint& a, const Checkpoint& b) {
  if (auto r = same_tensors(a.model, b.model); !r) return r << " (model)";
  if (auto r = same_tensors(a.optimizer, b.optimizer); !r) return r << " (optimizer)";
  if (a.epoch != b.epoch || a.rng_seed != b.rng_seed || a.rng_offset != b.rng_offset)
    return ::testing::AssertionFailure() << "epoch/rng differ";
  if (a.meta.architecture != b.meta.architecture || a.meta.class_names != b.meta.class_names)
    return ::testing::AssertionFailure() << "meta differs";
  if (a.settings != b.settings)
    return ::testing::AssertionFailure() << "settings differ: '" << a.settings << "' vs '"
                                         << b.settings << "'";
  return ::testing::AssertionSuccess();
}

TEST(Checkpoint, RoundTripWithOptimizerEpochAndRng) {
  ScratchDir dir;
  Checkpoint c = sample_checkpoint(3);
  save_checkpoint(dir / "c.h5", c);
  EXPECT_TRUE(same_checkpoint(load_checkpoint(dir / "c.h5"), c));
  // A checkpoint is also a weights file: its model loads alone, without /optimizer.
  WeightsFile w = load_weights(dir / "c.h5");
  EXPECT_EQ(w.format, kCheckpointFormat);
  EXPECT_TRUE(same_tensors(w.tensors, c.model));
  h5::H5File f = h5::H5File::open_read(dir / "c.h5");
  EXPECT_TRUE(f.exists("optimizer/exp_avg/conv1/weight"));
  // Without settings (as older checkpoints) the attribute is left out and reads back empty.
  c.settings.clear();
  save_checkpoint(dir / "c.h5", c);
  EXPECT_FALSE(h5::H5File::open_read(dir / "c.h5").has_attr("settings"));
  EXPECT_EQ(load_checkpoint(dir / "c.h5").settings, "");
  // The attributes alone: everything but the tensors.
  Checkpoint head = load_checkpoint(dir / "c.h5", /*tensors=*/false);
  EXPECT_EQ(head.epoch, c.epoch);
  EXPECT_EQ(head.rng_offset, c.rng_offset);
  EXPECT_TRUE(head.model.empty() && head.optimizer.empty());
}

TEST(Checkpoint, AWeightsFileIsNotACheckpoint) {
  ScratchDir dir;
  save_weights(dir / "w.h5", sample_tensors(1));
  std::string msg = error_of([&] { load_checkpoint(dir / "w.h5"); });
  EXPECT_TRUE(contains(msg, "not a checkpoint")) << msg;
  EXPECT_TRUE(contains(msg, "can start a new run (fridge_train --weights")) << msg;
  // Its attributes alone (tensors=false) are refused the same way.
  EXPECT_TRUE(contains(error_of([&] { load_checkpoint(dir / "w.h5", false); }), "not a checkpoint"));
  Checkpoint c = sample_checkpoint(1);
  c.model.emplace_back("optimizer.x", zeros({1}));
  msg = error_of([&] { save_checkpoint(dir / "c.h5", c); });
  EXPECT_TRUE(contains(msg, "clashes")) << msg;
}

// A failure at any moment of a write leaves the previous checkpoint complete and no
// temporary file; while the new file is being written the old one stays readable.
TEST(Checkpoint, FailedWriteKeepsThePreviousCheckpointAndNoTemporaryFile) {
  ScratchDir dir;
  const std::string path = dir / "c.h5";
  Checkpoint old_ckpt = sample_checkpoint(1), new_ckpt = sample_checkpoint(2);
  save_checkpoint(path, old_ckpt);

  for (const std::string crash_at : {"written", "synced"}) {
    SCOPED_TRACE(crash_at);
    int calls = 0;
    testing_hooks::set_atomic_write_hook([&](const std::string& stage, const std::string& tmp) {
      ++calls;
      EXPECT_TRUE(std::filesystem::exists(tmp)) << "the temporary file is where the data goes";
      EXPECT_EQ(std::filesystem::path(tmp).parent_path(), std::filesystem::path(path).parent_path())
          << "same directory, so the rename is atomic";
      // Mid-write, a reader still gets the complete previous checkpoint.
      EXPECT_TRUE(same_checkpoint(load_checkpoint(path), old_ckpt));
      if (stage == crash_at) throw std::runtime_error("simulated crash at " + stage);
    });
    EXPECT_THROW(save_checkpoint(path, new_ckpt), std::runtime_error);
    testing_hooks::set_atomic_write_hook({});
    EXPECT_EQ(calls, crash_at == "written" ? 1 : 2);
    EXPECT_TRUE(same_checkpoint(load_checkpoint(path), old_ckpt));
    EXPECT_EQ(dir.entries(), std::vector<std::string>{"c.h5"});
  }

  // A tensor that cannot be stored is found before anything is written.
  Checkpoint bad = new_ckpt;
  bad.optimizer.emplace_back("bad", zeros({2}, kUInt8));
  EXPECT_THROW(save_checkpoint(path, bad), Error);
  EXPECT_TRUE(same_checkpoint(load_checkpoint(path), old_ckpt));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"c.h5"});

  // And a write that goes through replaces it.
  save_checkpoint(path, new_ckpt);
  EXPECT_TRUE(same_checkpoint(load_checkpoint(path), new_ckpt));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"c.h5"});
}

TEST(Checkpoint, UnwritableDirectoryIsAClearError) {
  std::string msg =
      error_of([&] { save_checkpoint("/nonexistent-dir/c.h5", sample_checkpoint(1)); });
  EXPECT_TRUE(contains(msg, "/nonexistent-dir/")) << msg;
}

// ---- specs --------------------------------------------------------------------------------------

int64_t values(const std::vector<TensorSpec>& spec, bool params_only) {
  int64_t n = 0;
  for (const auto& s : spec) {
    bool buffer = s.name.find("running_") != std::string::npos ||
                  s.name.find("num_batches_tracked") != std::string::npos;
    if (!params_only || !buffer) n += numel_of(s.shape);
  }
  return n;
}

TEST(Specs, ResNetParameterCountsMatchTheirPublishedValues) {
  // torchvision's documented parameter counts (ImageNet, 1000 classes).
  EXPECT_EQ(values(torchvision_resnet_spec("resnet18"), true), 11689512);
  EXPECT_EQ(values(torchvision_resnet_spec("resnet34"), true), 21797672);
  EXPECT_EQ(values(torchvision_resnet_spec("resnet50"), true), 25557032);
  EXPECT_EQ(torchvision_resnet_spec("resnet18").size(), 122u);
  // The notebook model: body + head (BN 1024, Linear 1024->512, BN 512, Linear 512->4).
  int64_t body = values(torchvision_resnet_spec("resnet18"), true) - (1000 * 512 + 1000);
  int64_t head = 2 * 1024 + (512 * 1024 + 512) + 2 * 512 + (4 * 512 + 4);
  EXPECT_EQ(values(fastai_resnet_spec("resnet18", 4), true), body + head);
  std::vector<TensorSpec> nb = architecture_spec("fastai_resnet50", 4);
  auto find = [&](const std::string& n) {
    for (const auto& s : nb)
      if (s.name == n) return s.shape;
    return Shape{-1};
  };
  EXPECT_EQ(find("head.2.weight"), Shape{4096});
  EXPECT_EQ(find("head.4.weight"), (Shape{512, 4096}));
  EXPECT_EQ(find("head.8.bias"), Shape{4});
  EXPECT_EQ(find("body.layer1.0.downsample.0.weight"), (Shape{256, 64, 1, 1}));
  std::string msg = error_of([] { architecture_spec("resnet99", 4); });
  EXPECT_TRUE(contains(msg, "resnet99") && contains(msg, "resnet18")) << msg;
}

// ---- float16 ------------------------------------------------------------------------------------

TEST(Float16, EveryHalfValueRoundTripsThroughFloat) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = half_to_float(static_cast<uint16_t>(h));
    bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
    if (nan) {
      ASSERT_TRUE(std::isnan(f)) << h;
      ASSERT_TRUE(std::isnan(half_to_float(float_to_half(f)))) << h;
    } else {
      ASSERT_EQ(float_to_half(f), h) << "half bits " << h << " -> " << f;
    }
  }
}

TEST(Float16, RoundsToNearestEven) {
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half(65519.99f), 0x7bff);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // the tie rounds to even: infinity
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);  // tie -> even (zero)
  EXPECT_EQ(float_to_half(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie -> even
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half(-INFINITY), 0xfc00);
  EXPECT_EQ(bf16_to_float(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_float(0xc2f7), -123.5f);
}

// ---- Hugging Face names -------------------------------------------------------------------------

TEST(HuggingFaceNames, MapToTorchvision) {
  EXPECT_EQ(hf_resnet_to_torchvision("resnet.embedder.embedder.convolution.weight"),
            "conv1.weight");
  EXPECT_EQ(hf_resnet_to_torchvision("resnet.embedder.embedder.normalization.running_var"),
            "bn1.running_var");
  EXPECT_EQ(hf_resnet_to_torchvision("resnet.encoder.stages.0.layers.1.layer.1.convolution.weight"),
            "layer1.1.conv2.weight");
  EXPECT_EQ(hf_resnet_to_torchvision("resnet.encoder.stages.3.layers.0.layer.2.normalization.bias"),
            "layer4.0.bn3.bias");
  EXPECT_EQ(
      hf_resnet_to_torchvision("resnet.encoder.stages.1.layers.0.shortcut.convolution.weight"),
      "layer2.0.downsample.0.weight");
  EXPECT_EQ(hf_resnet_to_torchvision(
                "resnet.encoder.stages.1.layers.0.shortcut.normalization.num_batches_tracked"),
            "layer2.0.downsample.1.num_batches_tracked");
  EXPECT_EQ(hf_resnet_to_torchvision("classifier.1.weight"), "fc.weight");
  EXPECT_EQ(hf_resnet_to_torchvision("embedder.embedder.convolution.weight"), "conv1.weight");
  // Outside the scheme.
  EXPECT_EQ(hf_resnet_to_torchvision("resnet.embedder.embedder.convolution.bias"), "");
  EXPECT_EQ(
      hf_resnet_to_torchvision("resnet.encoder.stages.01.layers.0.shortcut.convolution.weight"),
      "");
  EXPECT_EQ(hf_resnet_to_torchvision("classifier.0.weight"), "");
  EXPECT_EQ(hf_resnet_to_torchvision("conv1.weight"), "");
}

}  // namespace
}  // namespace cudl
