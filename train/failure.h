// How fridge_train and fridge_eval report the error that ended them, on stderr:
//   PROGRAM: error: MESSAGE
// (cudl's errors without their source location: the message names what is wrong), and after a
// failure of the GPU backend (cudl::DeviceError: CUDA, cuBLAS, cuDNN, device memory) or of a
// write for lack of space (a full disk, a quota, a file size limit) or of a bad label row or
// image (cudl::BadDataError) what to try instead, one "PROGRAM: hint: ..." line each.
#pragma once

#include <exception>
#include <string>

namespace cudl::train {

// The lines to print for exception e. `checkpoint`: the checkpoint this run wrote or resumed
// from, which --resume continues from ("" when there is none). `allow_empty`: the program has
// --allow-empty (rows with an empty labels field read as images without any of the classes).
std::string failure_report(const std::string& program, const std::exception& e,
                           const std::string& checkpoint = "", bool allow_empty = false);

}  // namespace cudl::train
