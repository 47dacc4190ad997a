// Weights files written by real PyTorch (tests/reference/weights.py, run by ctest first) through
// the importer library and the weights_import program, and cudl's files read back by h5py and
// h5dump. Every comparison here is bit for bit: importing only copies (float16 and bfloat16
// widen exactly), so any difference is a bug.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "models/float16.h"
#include "models/resnet_spec.h"
#include "models/weights_import.h"
#include "models/weights_io.h"
#include "tests/common/test_util.h"
#include "tests/models/weights_test_util.h"

namespace cudl {
namespace {

using testing::bit_equal;
using testing::error_of;
using testing::load_reference;
using testing::run_command;
using testing::RunResult;
using testing::same_tensors;
using testing::ScratchDir;
using testing::shell_quote;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string ref_file(const std::string& file) {
  return testing::reference_dir("weights") + "/" + file;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

// The tensors PyTorch saved, in state-dict order (float32, or int64 for integer types).
NamedTensors expected(const std::string& case_name) {
  NamedTensors out;
  for (const std::string& name : lines_of(ref_file(case_name + "_names.txt")))
    out.emplace_back(name, load_reference("weights_" + case_name, name));
  return out;
}

RunResult tool(const std::string& args) {
  return run_command(std::string(shell_quote(CUDL_WEIGHTS_IMPORT)) + " " + args);
}

// ---- the library --------------------------------------------------------------------------------

TEST(TorchFiles, TorchvisionResnet18IsImportedBitForBit) {
  NamedTensors want = expected("resnet18");
  ASSERT_EQ(want.size(), 122u);
  for (const char* file : {"resnet18.pth", "resnet18_p4.pth", "resnet18.safetensors"}) {
    SCOPED_TRACE(file);
    ImportedWeights w = import_weights(ref_file(file));
    EXPECT_EQ(w.naming, "torchvision ResNet");
    EXPECT_TRUE(same_tensors(w.tensors, want));  // names, order, dtypes, shapes, bits
  }
  EXPECT_EQ(import_weights(ref_file("resnet18.pth")).format, WeightsFileFormat::kTorchZip);
  EXPECT_EQ(import_weights(ref_file("resnet18.safetensors")).format,
            WeightsFileFormat::kSafetensors);
}

TEST(TorchFiles, HuggingFaceNamesBecomeTorchvisionNames) {
  NamedTensors want = expected("resnet18");
  std::map<std::string, Tensor> by_name(want.begin(), want.end());
  for (const char* file : {"hf_resnet18.pth", "hf_resnet18.safetensors"}) {
    SCOPED_TRACE(file);
    ImportedWeights w = import_weights(ref_file(file));
    EXPECT_TRUE(contains(w.naming, "Hugging Face")) << w.naming;
    ASSERT_EQ(w.tensors.size(), want.size());
    for (size_t i = 0; i < w.tensors.size(); ++i) {
      const auto& [name, t] = w.tensors[i];
      ASSERT_TRUE(by_name.count(name)) << name << " (from " << w.stored_names[i] << ")";
      EXPECT_TRUE(bit_equal(t, by_name.at(name))) << name;
    }
    EXPECT_EQ(w.stored_names[0], "resnet.embedder.embedder.convolution.weight");
    // Matching against the spec puts them in torchvision's order.
    EXPECT_TRUE(same_tensors(match_weights(w.tensors, torchvision_resnet_spec("resnet18")), want));
  }
}

TEST(TorchFiles, ViewsAreMadeContiguous) {
  // Transposed, strided, offset, broadcast (stride 0), permuted, 0-d and empty tensors that
  // share storages.
  EXPECT_TRUE(same_tensors(import_weights(ref_file("views.pth")).tensors, expected("views")));
}

TEST(TorchFiles, Float16BFloat16Float64AndIntegerTypes) {
  NamedTensors want = expected("dtypes");
  EXPECT_TRUE(same_tensors(import_weights(ref_file("dtypes.pth")).tensors, want));
  EXPECT_TRUE(same_tensors(import_weights(ref_file("dtypes.safetensors")).tensors, want));
}

TEST(TorchFiles, StateDictInsideAModelOrStateDictEntryAndParameters) {
  NamedTensors want = expected("small");
  for (const char* file : {"wrapped_model.pth", "wrapped_state_dict.pth"}) {
    SCOPED_TRACE(file);
    ImportedWeights w = import_weights(ref_file(file));
    EXPECT_TRUE(same_tensors(w.tensors, want));
    EXPECT_TRUE(
        contains(w.note, std::string(file) == "wrapped_model.pth" ? "'model'" : "'state_dict'"))
        << w.note;
  }
}

TEST(TorchFiles, ReadsAFileWrittenByH5py) {
  // Name order (h5py does not record creation order), float64 -> float32, int32 -> int64.
  WeightsFile f = load_weights(ref_file("h5py_written.h5"));
  EXPECT_EQ(f.format, "");
  ASSERT_EQ(f.tensors.size(), 3u);
  EXPECT_EQ(f.tensors[0].first, "count");
  EXPECT_EQ(f.tensors[0].second.item<int64_t>(), 7);
  EXPECT_EQ(f.tensors[1].first, "lin.bias");
  EXPECT_EQ(f.tensors[2].first, "lin.weight");
  std::vector<float> w = f.tensors[2].second.to_vector<float>();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(w[i], static_cast<float>(i / 7.0));
  EXPECT_EQ(f.meta.class_names, (std::vector<std::string>{"can", "carton"}));  // fixed-length
  EXPECT_EQ(f.meta.architecture, "tiny");
}

TEST(TorchFiles, Float16RoundingMatchesNumpy) {
  Tensor in = load_reference("weights_float16", "inputs");
  Tensor bits = load_reference("weights_float16", "half_bits");
  std::vector<float> x = in.to_vector<float>();
  std::vector<int64_t> want = bits.to_vector<int64_t>();
  ASSERT_EQ(x.size(), want.size());
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_EQ(float_to_half(x[i]), static_cast<uint16_t>(want[i])) << "x = " << x[i];
}

TEST(TorchFiles, SpecsMatchPyTorchStateDicts) {
  // specs.txt: "<arch> <classes> <name> <torch dtype> <d0,d1,...>" in state-dict order.
  std::map<std::pair<std::string, int64_t>, std::vector<TensorSpec>> got;
  std::vector<std::pair<std::string, int64_t>> order;
  for (const std::string& line : lines_of(ref_file("specs.txt"))) {
    std::istringstream in(line);
    std::string arch, name, dtype, dims;
    int64_t classes;
    in >> arch >> classes >> name >> dtype;
    in >> dims;  // absent for 0-d tensors
    Shape shape;
    std::stringstream ds(dims);
    for (std::string d; std::getline(ds, d, ',');) shape.push_back(std::stoll(d));
    auto key = std::make_pair(arch, classes);
    if (!got.count(key)) order.push_back(key);
    got[key].push_back({name, shape, dtype == "torch.int64" ? kInt64 : kFloat32});
  }
  ASSERT_EQ(order.size(), 9u);
  for (const auto& key : order) {
    SCOPED_TRACE(key.first + " " + std::to_string(key.second));
    std::vector<TensorSpec> ours = architecture_spec(key.first, key.second);
    const std::vector<TensorSpec>& torch = got[key];
    ASSERT_EQ(ours.size(), torch.size());
    for (size_t i = 0; i < ours.size(); ++i) {
      EXPECT_EQ(ours[i].name, torch[i].name);
      EXPECT_EQ(ours[i].shape, torch[i].shape) << ours[i].name;
      EXPECT_EQ(ours[i].dtype, torch[i].dtype) << ours[i].name;
    }
  }
}

TEST(TorchFiles, HostileAndDamagedFilesAreRejected) {
  struct Case {
    const char* file;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"hostile_system.pth", "refusing to load global 'posix.system'"},
           {"hostile_eval_p4.pth", "refusing to load global 'builtins.eval'"},
           {"legacy.pth", "_use_new_zipfile_serialization=True"},
           {"zip_offset_past_end.pth", "'tiny/data/0' points past the end of the file"},
           {"zip_size_past_end.pth", "'tiny/data/0' points past the end of the file"},
           {"zip_corrupt_data.pth", "'tiny/data/0' is corrupt"},
           {"truncated.pth", "end-of-central-directory record is missing"},
           {"truncated.safetensors", "point past the end of the data"},
           {"random.bin", "not a recognised weights file"},
       }) {
    std::string msg = error_of([&] { import_weights(ref_file(c.file)); });
    EXPECT_TRUE(contains(msg, c.message)) << c.file << ": " << msg;
    EXPECT_TRUE(contains(msg, c.file)) << "the message names the file: " << msg;
  }
  // The payloads would have created these files.
  EXPECT_FALSE(std::filesystem::exists(ref_file("PWNED_system")));
  EXPECT_FALSE(std::filesystem::exists(ref_file("PWNED_eval")));
}

TEST(TorchFiles, BackboneLoadsIntoTheNotebookModelsBody) {
  ScratchDir dir;
  save_weights(dir / "r18.h5", import_weights(ref_file("resnet18.pth")).tensors);
  std::vector<TensorSpec> model = fastai_resnet_spec("resnet18", 4);
  NamedTensors body = load_weights_checked(dir / "r18.h5", model, torchvision_backbone_to_body());
  ASSERT_EQ(body.size(), 120u);  // everything but fc.weight and fc.bias
  NamedTensors want = expected("resnet18");
  for (size_t i = 0; i < body.size(); ++i) {
    EXPECT_EQ(body[i].first, "body." + want[i].first);
    EXPECT_TRUE(bit_equal(body[i].second, want[i].second)) << body[i].first;
  }
  // Against the full model without the mapping, every body and head entry is reported:
  // 120 body + 14 head entries missing, all 122 file entries unexpected.
  std::string msg = error_of([&] { load_weights_checked(dir / "r18.h5", model); });
  EXPECT_TRUE(contains(msg, "(134 missing, 122 unexpected")) << msg.substr(0, 300);
}

// ---- the weights_import program -----------------------------------------------------------------

TEST(WeightsImportTool, ConvertsTorchvisionFileBitForBit) {
  ScratchDir dir;
  RunResult r = tool(shell_quote(ref_file("resnet18.pth")) + " --arch resnet18 -o " +
                     shell_quote(dir / "r.h5"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "all 122 tensors match resnet18")) << r.output;
  WeightsFile f = load_weights(dir / "r.h5");
  EXPECT_EQ(f.format, kWeightsFormat);
  EXPECT_EQ(f.meta.architecture, "resnet18");
  EXPECT_TRUE(same_tensors(f.tensors, expected("resnet18")));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"r.h5"});

  // The same file from the safetensors and Hugging Face sources.
  for (const char* src : {"resnet18.safetensors", "hf_resnet18.pth", "hf_resnet18.safetensors"}) {
    r = tool(shell_quote(ref_file(src)) + " --arch resnet18 -o " + shell_quote(dir / "s.h5"));
    ASSERT_EQ(r.exit_code, 0) << src << ": " << r.output;
    EXPECT_TRUE(same_tensors(load_weights(dir / "s.h5").tensors, f.tensors)) << src;
  }
}

TEST(WeightsImportTool, H5pyAndH5dumpReadTheOutput) {
  ScratchDir dir;
  const std::string check =
      std::string(shell_quote(CUDL_PYTHON_EXE)) + " " + shell_quote(CUDL_H5CHECK_SCRIPT);
  for (bool fp16 : {false, true}) {
    SCOPED_TRACE(fp16 ? "fp16" : "fp32");
    std::string out = dir / (fp16 ? "h.h5" : "f.h5");
    RunResult r = tool(shell_quote(ref_file("resnet18.pth")) + " -o " + shell_quote(out) +
                       (fp16 ? " --fp16" : ""));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // Every dataset equals PyTorch's tensor (float16 files: numpy's float16 rounding of it).
    r = run_command(check + " " + shell_quote(out) + " " +
                    shell_quote(testing::reference_dir("weights_resnet18")));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "h5py read 122 datasets, all equal")) << r.output;
    if (std::string(CUDL_H5DUMP_EXE).empty()) {
      ADD_FAILURE() << "h5dump not found at configure time (Debian: hdf5-tools)";
    } else {
      r = run_command(std::string(shell_quote(CUDL_H5DUMP_EXE)) + " -H " + shell_quote(out));
      EXPECT_EQ(r.exit_code, 0) << r.output;
      EXPECT_TRUE(contains(r.output, "DATASET \"weight\"")) << r.output.substr(0, 500);
    }
  }
  // The float16 file loads as float32, each value rounded once.
  NamedTensors half = load_weights(dir / "h.h5").tensors, want = expected("resnet18");
  ASSERT_EQ(half.size(), want.size());
  for (size_t i = 0; i < half.size(); ++i) {
    ASSERT_EQ(half[i].second.dtype(), want[i].second.dtype());
    if (want[i].second.dtype() == kInt64) {
      EXPECT_TRUE(bit_equal(half[i].second, want[i].second));
      continue;
    }
    std::vector<float> h = half[i].second.to_vector<float>(), w = want[i].second.to_vector<float>();
    for (size_t k = 0; k < w.size(); ++k)
      ASSERT_EQ(h[k], half_to_float(float_to_half(w[k]))) << half[i].first;
  }

  // Every attribute, as h5py sees it.
  WeightsMeta meta;
  meta.architecture = "fastai_resnet18";
  meta.class_names = std::vector<std::string>{"can", "carton", "milk_bottle", "water_bottle"};
  meta.input_size = std::vector<int64_t>{3, 300, 300};
  meta.norm_mean = std::vector<double>{0.485, 0.456, 0.406};
  meta.norm_std = std::vector<double>{0.229, 0.224, 0.225};
  meta.threshold = 0.45;
  save_weights(dir / "m.h5", {{"x", zeros({1})}}, meta);
  RunResult r = run_command(check + " " + shell_quote(dir / "m.h5") + " --attrs");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output,
            "architecture=fastai_resnet18\n"
            "class_names=[can,carton,milk_bottle,water_bottle]\n"
            "format=cudl-weights\n"
            "format_version=1\n"
            "input_size=[3,300,300]\n"
            "normalization_mean=[0.485,0.456,0.406]\n"
            "normalization_std=[0.229,0.224,0.225]\n"
            "threshold=0.45\n");
}

TEST(WeightsImportTool, WrongArchitectureListsEveryMismatchAndWritesNothing) {
  ScratchDir dir;
  RunResult r = tool(shell_quote(ref_file("resnet18.pth")) + " --arch resnet34 -o " +
                     shell_quote(dir / "o.h5"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "96 problems (96 missing, 0 unexpected")) << r.output;
  EXPECT_TRUE(contains(r.output, "missing: layer1.2.conv1.weight float32 (64, 64, 3, 3)"));
  EXPECT_TRUE(contains(r.output, "missing: layer4.2.bn2.num_batches_tracked int64 ()"));

  r = tool(shell_quote(ref_file("wrong_shape.pth")) + " --arch resnet18 -o " +
           shell_quote(dir / "o.h5"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(
      contains(r.output, "3 problems (1 missing, 1 unexpected, 1 wrong shape, 0 wrong dtype)"))
      << r.output;
  EXPECT_TRUE(contains(r.output, "missing: fc.bias float32 (1000,)")) << r.output;
  EXPECT_TRUE(contains(r.output, "unexpected: extra.weight float32 (3,)")) << r.output;
  EXPECT_TRUE(contains(r.output,
                       "wrong shape: layer1.0.conv1.weight: expected (64, 64, 3, 3), "
                       "found (64, 64, 1, 1)"))
      << r.output;

  r = tool(shell_quote(ref_file("resnet18.pth")) + " --arch resnet18 --num-classes 4 -o " +
           shell_quote(dir / "o.h5"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "fc.weight: expected (4, 512), found (1000, 512)")) << r.output;
  EXPECT_TRUE(dir.entries().empty());
}

TEST(WeightsImportTool, HostileAndDamagedFilesExitOneAndLeaveNothing) {
  ScratchDir dir;
  for (const char* file :
       {"hostile_system.pth", "hostile_eval_p4.pth", "legacy.pth", "zip_offset_past_end.pth",
        "zip_size_past_end.pth", "zip_corrupt_data.pth", "truncated.pth", "truncated.safetensors",
        "random.bin"}) {
    RunResult r = tool(shell_quote(ref_file(file)) + " -o " + shell_quote(dir / "o.h5"));
    EXPECT_EQ(r.exit_code, 1) << file << ": " << r.output;
    EXPECT_TRUE(contains(r.output, "weights_import: error: ") && contains(r.output, file))
        << r.output;
    EXPECT_TRUE(dir.entries().empty()) << file;
  }
  EXPECT_FALSE(std::filesystem::exists(ref_file("PWNED_system")));
  EXPECT_FALSE(std::filesystem::exists(ref_file("PWNED_eval")));
  RunResult r = tool(shell_quote(ref_file("legacy.pth")) + " -o " + shell_quote(dir / "o.h5"));
  EXPECT_TRUE(contains(r.output, "Re-save it with a newer PyTorch")) << r.output;
}

TEST(WeightsImportTool, ListShowsFormatNamingAndTensorsWithoutWriting) {
  ScratchDir dir;
  std::string copy = dir / "hf.safetensors";
  std::filesystem::copy_file(ref_file("hf_resnet18.safetensors"), copy);
  RunResult r = tool(shell_quote(copy) + " --list");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "safetensors, 122 tensors, 11,699,132 values")) << r.output;
  EXPECT_TRUE(contains(r.output, "naming: Hugging Face transformers ResNet")) << r.output;
  EXPECT_TRUE(contains(r.output, "conv1.weight"));
  EXPECT_TRUE(contains(r.output, "(64, 3, 7, 7)  <- resnet.embedder.embedder.convolution.weight"))
      << r.output;
  EXPECT_EQ(dir.entries(),
            std::vector<std::string>{"hf.safetensors"});  // --list alone writes nothing

  // Without -o the output is INPUT with .h5.
  r = tool(shell_quote(copy));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"hf.h5", "hf.safetensors"}));
}

TEST(WeightsImportTool, PrefixExcludeAndFp16) {
  ScratchDir dir;
  // --exclude before INPUT: each --exclude takes exactly one pattern.
  RunResult r = tool("--exclude 'fc.*' " + shell_quote(ref_file("resnet18.pth")) +
                     " --arch resnet18 --prefix body --fp16 -o " + shell_quote(dir / "b.h5"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  WeightsFile f = load_weights(dir / "b.h5");
  EXPECT_FALSE(f.meta.architecture) << "a prefixed, partial file is not a resnet18 file";
  ASSERT_EQ(f.tensors.size(), 120u);
  EXPECT_EQ(f.tensors[0].first, "body.conv1.weight");
  WeightsMapping body_only;
  body_only.required_prefix = "body.";
  EXPECT_EQ(load_weights_checked(dir / "b.h5", fastai_resnet_spec("resnet18", 4), body_only).size(),
            120u);
}

// --strip-prefix removes DataParallel's "module."; a pattern of --exclude that matches nothing
// and non-finite values are warned about (the file is still written); a prefix that no name has
// is an error.
TEST(WeightsImportTool, StripPrefixAndWarnings) {
  ScratchDir dir;
  const std::string in = shell_quote(ref_file("dataparallel_nan.pth"));
  RunResult r = tool(in + " --strip-prefix module --exclude 'fc.*' -o " + shell_quote(dir / "s.h5"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  WeightsFile f = load_weights(dir / "s.h5");
  ASSERT_FALSE(f.tensors.empty());
  EXPECT_EQ(f.tensors[0].first, "0.weight");
  EXPECT_TRUE(contains(r.output, "--exclude 'fc.*' matches no tensor")) << r.output;
  EXPECT_TRUE(contains(r.output, "0.weight has 2 NaN or infinite values")) << r.output;
  r = tool(in + " --strip-prefix body. -o " + shell_quote(dir / "t.h5"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "no tensor name starts with 'body.'")) << r.output;
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"s.h5"});
}

TEST(WeightsImportTool, UsageErrorsExitTwo) {
  ScratchDir dir;
  EXPECT_EQ(tool("").exit_code, 2);
  EXPECT_EQ(tool(shell_quote(dir / "missing.pth")).exit_code, 2);
  EXPECT_EQ(tool(shell_quote(ref_file("resnet18.pth")) + " --arch resnet99").exit_code, 2);
  EXPECT_EQ(tool(shell_quote(ref_file("resnet18.pth")) + " --num-classes 4").exit_code, 2);
  EXPECT_EQ(
      tool(shell_quote(ref_file("resnet18.pth")) + " --arch resnet18 --num-classes 0").exit_code,
      2);
  EXPECT_EQ(tool(shell_quote(ref_file("resnet18.pth")) + " --bogus").exit_code, 2);
  EXPECT_EQ(
      tool(shell_quote(ref_file("resnet18.pth")) + " -o " + shell_quote(ref_file("resnet18.pth")))
          .exit_code,
      2);
  RunResult help = tool("--help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* opt : {"--output", "--arch", "--num-classes", "--list", "--fp16", "--prefix",
                          "--strip-prefix", "--exclude", "Exit codes"})
    EXPECT_TRUE(contains(help.output, opt)) << opt;
  EXPECT_TRUE(dir.entries().empty());
}

}  // namespace
}  // namespace cudl
