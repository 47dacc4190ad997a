#include "train/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>

namespace cudl::train {

namespace {

std::atomic<int> g_signal{0};  // the first signal received; 0 before any
char g_message[256] = {};  // written by install_interrupt_handler
size_t g_message_size = 0;

extern "C" void on_stop_signal(int sig) {
  int expected = 0;
  if (!g_signal.compare_exchange_strong(expected, sig)) {
    ::signal(sig, SIG_DFL);  // the second one: what the signal does by default, now
    ::raise(sig);
    return;
  }
  const ssize_t ignored = ::write(STDERR_FILENO, g_message, g_message_size);
  (void)ignored;
}

}  // namespace

void install_interrupt_handler(const char* program) {
  static_assert(std::atomic<int>::is_always_lock_free, "used from a signal handler");
  std::snprintf(g_message, sizeof g_message,
                "\n%s: interrupted: stopping at the next batch (again to stop at once)\n", program);
  g_message_size = std::strlen(g_message);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

void stop_if_interrupted() {
  const int sig = g_signal.load(std::memory_order_relaxed);
  if (sig != 0) throw Interrupted(sig);
}

}  // namespace cudl::train
