// A restricted unpickler for the data.pkl of a torch.save archive.
//
// It understands the pickle opcodes (protocols 2 to 5) that PyTorch emits for state dicts and
// builds plain values; it never imports or calls anything. Globals are accepted only from an
// allow-list, and only where PyTorch puts them:
//   collections.OrderedDict                    REDUCE with no arguments -> an empty dict
//   torch._utils._rebuild_tensor_v2           REDUCE -> a tensor reference (storage, offset,
//                                              sizes, strides in elements)
//   torch._utils._rebuild_parameter(_with_state)  REDUCE -> the wrapped tensor reference
//   torch.{Float,Half,BFloat16,Double,Long,Int,Short,Char,Byte,Bool}Storage
//                                              storage types inside a persistent id
//                                              ('storage', type, key, location, numel)
// Any other global (os.system, builtins.eval, ...) is refused by name at the byte where it
// appears, before anything else happens.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/raw_tensor.h"

namespace cudl::torch_pickle {

// "FloatStorage", ... : the PyTorch class that names a storage of this element type.
const char* storage_type_name(RawType t);

struct Value;

// Objects live in an arena owned by the result, so nested or cyclic structures (which a
// hostile pickle can build with the memo) are freed without recursion.
struct Value {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kBytes,
    kTuple,
    kList,
    kDict,
    kGlobal,
    kStorage,
    kTensor
  };
  Kind kind = Kind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                                // string, bytes, or a global's "module.name"
  std::vector<Value*> items;                    // tuple, list
  std::vector<std::pair<Value*, Value*>> dict;  // insertion order; duplicates kept
  // storage (persistent id)
  RawType storage_type = RawType::kF32;
  std::string storage_key, location;
  int64_t storage_numel = 0;
  // tensor (from _rebuild_tensor_v2)
  Value* storage = nullptr;
  int64_t offset = 0;
  std::vector<int64_t> sizes, strides;

  const char* kind_name() const;
};

struct Unpickled {
  std::vector<std::unique_ptr<Value>> arena;
  Value* root = nullptr;
};

// Runs the restricted unpickler over `data`; `where` names it in errors ("x.pth: data.pkl").
Unpickled unpickle(const uint8_t* data, size_t size, const std::string& where);

}  // namespace cudl::torch_pickle
