// Readers for published weights files, behind the weights_import tool:
//   - PyTorch torch.save files (the zip format of PyTorch >= 1.6): the archive's central
//     directory is read here (models/zip_archive.h) and data.pkl by a restricted unpickler
//     (models/torch_pickle.h) that accepts only an allow-list of globals and runs nothing;
//   - safetensors files (8-byte little-endian header length, JSON header, raw data);
//   - cudl's own HDF5 files (models/weights_io.h).
// Float16, bfloat16 and float64 tensors become float32 (float16 and bfloat16 exactly); integer
// and bool tensors become int64. Non-contiguous tensors are made contiguous.
// Hugging Face transformers ResNet names (microsoft/resnet-18, ...) are recognised and renamed
// to torchvision's, so either source gives the same file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/weights_io.h"

namespace cudl {

enum class WeightsFileFormat { kTorchZip, kSafetensors, kCudlHdf5, kTorchLegacy, kUnknown };

// Recognises a file by its first bytes (at least 16 of them, or the whole file if shorter)
// and its size: zip magic, safetensors header, HDF5 signature, or a bare pickle stream (the
// legacy torch.save format).
WeightsFileFormat detect_weights_format(const uint8_t* head, size_t head_size, uint64_t file_size);
const char* weights_format_name(WeightsFileFormat f);

// A torch.save zip archive holding a state dict: a dict of tensors, or a dict with a
// "state_dict" or "model" entry holding one (`note`, when given, says which was used).
NamedTensors read_torch_zip(const std::string& path, std::string* note = nullptr);
NamedTensors read_safetensors(const std::string& path);

// Hugging Face transformers ResNet names -> torchvision names:
//   resnet.embedder.embedder.convolution.weight            -> conv1.weight
//   resnet.embedder.embedder.normalization.*               -> bn1.*
//   resnet.encoder.stages.I.layers.J.layer.K.convolution.weight   -> layerI+1.J.convK+1.weight
//   resnet.encoder.stages.I.layers.J.layer.K.normalization.*      -> layerI+1.J.bnK+1.*
//   resnet.encoder.stages.I.layers.J.shortcut.convolution.weight -> layerI+1.J.downsample.0.weight
//   resnet.encoder.stages.I.layers.J.shortcut.normalization.*    -> layerI+1.J.downsample.1.*
//   classifier.1.*                                          -> fc.*
// (the leading "resnet." is optional: a bare ResNetModel's state dict lacks it). Returns ""
// for a name outside this scheme.
std::string hf_resnet_to_torchvision(const std::string& hf_name);
// True when the names look like a Hugging Face ResNet (an embedder.embedder.* entry).
bool is_hf_resnet_naming(const NamedTensors& tensors);

struct ImportedWeights {
  NamedTensors tensors;                   // torchvision names when a known naming was mapped
  std::vector<std::string> stored_names;  // the names as stored in the file, parallel to tensors
  WeightsFileFormat format = WeightsFileFormat::kUnknown;
  std::string naming;  // "as stored" or "Hugging Face transformers ResNet ..."
  std::string note;    // where in the file the state dict was found, if not
                       // at the top
};

// Detects the format from the content, reads the tensors and maps Hugging Face names. Every
// problem (unreadable, truncated, corrupt, hostile, legacy) is a cudl::Error naming the file.
ImportedWeights import_weights(const std::string& path);

}  // namespace cudl
