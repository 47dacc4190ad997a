#include "train/failure.h"

#include "tensor/error.h"

namespace cudl::train {

std::string failure_report(const std::string& program, const std::exception& e,
                           const std::string& checkpoint, bool allow_empty) {
  const auto* ce = dynamic_cast<const Error*>(&e);
  std::string r = program + ": error: " + (ce ? ce->message() : std::string(e.what())) + "\n";
  auto resume_hint = [&] {
    if (!checkpoint.empty())
      r += program + ": hint: --resume (with the same --out) continues from " + checkpoint +
           ", the last checkpoint of this run\n";
  };
  if (const auto* bad = dynamic_cast<const BadDataError*>(&e)) {
    if (allow_empty && bad->kind() == BadDataError::Kind::kRowWithoutLabels)
      r += program + ": hint: --allow-empty reads a row with an empty labels field as an image "
                     "with none of the classes\n";
    r += program + ": hint: --skip-bad skips bad label rows and unreadable images with a " +
         "warning and goes on with the rest\n";
    return r;
  }
  const std::string message = e.what();
  for (const char* full : {"No space left on device", "Disk quota exceeded", "File too large"}) {
    if (message.find(full) == std::string::npos) continue;
    r += program + ": hint: a file could not be written (" + full + "); free some space, or " +
         "give an --out on another file system\n";
    resume_hint();
    return r;
  }
  const auto* de = dynamic_cast<const DeviceError*>(&e);
  if (!de) return r;
  if (de->out_of_memory()) {
    r += program +
         ": hint: the GPU's memory ran out; a smaller --bs needs less of it, --mixed-precision "
         "stores activations in bfloat16 (half the bytes), and --device cpu runs on the CPU\n";
  } else {
    r += program +
         ": hint: this failed in the GPU backend (CUDA, cuBLAS or cuDNN); --device cpu runs the "
         "same computation on the CPU\n";
  }
  resume_hint();
  return r;
}

}  // namespace cudl::train
