// Ctrl-C in fridge_train. The first SIGINT or SIGTERM asks the run to stop: it says so on
// stderr at once, and the training or validation loop throws Interrupted at its next batch;
// fit() then lets its checkpoint writer finish the checkpoint in flight, so no partial temporary
// file is left behind and --resume continues from the last epoch on disk. A second signal ends
// the process at once, as the signal's default action would.
#pragma once

#include <stdexcept>

namespace cudl::train {

class Interrupted : public std::runtime_error {
 public:
  explicit Interrupted(int signal)
      : std::runtime_error("interrupted by a signal"), signal_(signal) {}
  int signal() const { return signal_; }  // SIGINT or SIGTERM

 private:
  int signal_;
};

// Installs the handlers for SIGINT and SIGTERM; `program` prefixes what they print.
void install_interrupt_handler(const char* program);
// Throws Interrupted when a signal asked the run to stop (cheap: one atomic load).
void stop_if_interrupted();

}  // namespace cudl::train
