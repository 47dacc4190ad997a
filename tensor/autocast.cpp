#include "tensor/autocast.h"

namespace cudl {

namespace {
thread_local bool t_enabled = false;
thread_local DType t_dtype = kBFloat16;
}  // namespace

AutocastGuard::AutocastGuard(bool enabled, DType dtype)
    : prev_enabled_(t_enabled), prev_dtype_(t_dtype) {
  CUDL_CHECK(dtype == kBFloat16, "autocast: only bfloat16 is supported, got ", toString(dtype));
  if (enabled) {
    t_enabled = true;
    t_dtype = dtype;
  }
}

AutocastGuard::~AutocastGuard() {
  t_enabled = prev_enabled_;
  t_dtype = prev_dtype_;
}

bool autocast_enabled() { return t_enabled; }
DType autocast_dtype() { return t_dtype; }

Tensor autocast_operand(const Tensor& t) {
  if (!t_enabled || !t.defined() || t.dtype() != kFloat32) return t;
  return t.to(t_dtype);
}

}  // namespace cudl
