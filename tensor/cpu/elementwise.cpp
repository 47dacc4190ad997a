// CPU elementwise loops over the functors of ops/elementwise_functors.h, compiled for the
// baseline and for AVX2 (isa.h).
#include "tensor/cpu/isa.h"
#include "tensor/ops/kernels.h"
#include "tensor/parallel.h"

CUDL_CPU_KERNELS_BEGIN

namespace {
constexpr int64_t kGrain = 32768;

// Operands load as compute_t<T> (float for bfloat16) and the result rounds once on store.
template <class T, class F>
void unary_loop(F f, int64_t n, const T* in, T* out, const StridedIndex<2>* idx) {
  using C = compute_t<T>;
  if (!idx) {
    parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] = T(f(C(in[i])));
    });
    return;
  }
  const StridedIndex<2> ix = *idx;
  parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    int64_t off[2];
    for (int64_t i = b; i < e; ++i) {
      ix.offsets(i, off);
      out[off[0]] = T(f(C(in[off[1]])));
    }
  });
}

template <class T, class F>
void binary_loop(F f, int64_t n, const T* a, const T* b, T* out, const StridedIndex<3>* idx) {
  using C = compute_t<T>;
  if (!idx) {
    parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) out[i] = T(f(C(a[i]), C(b[i])));
    });
    return;
  }
  const StridedIndex<3> ix = *idx;
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    int64_t off[3];
    for (int64_t i = lo; i < hi; ++i) {
      ix.offsets(i, off);
      out[off[0]] = T(f(C(a[off[1]]), C(b[off[2]])));
    }
  });
}
}  // namespace

void unary(UnaryOp op, double s, DType dtype, int64_t n, const void* in, void* out,
           const StridedIndex<2>* idx) {
  detail::count_kernel_call(kThisCopy);
  CUDL_DISPATCH_FLOATING_BF16(dtype, "unary op", [&] {
    visit_unary(op, s, [&](auto f) {
      unary_loop(f, n, static_cast<const scalar_t*>(in), static_cast<scalar_t*>(out), idx);
    });
  });
}

void binary(BinaryOp op, double s, DType dtype, int64_t n, const void* a, const void* b, void* out,
            const StridedIndex<3>* idx) {
  detail::count_kernel_call(kThisCopy);
  CUDL_DISPATCH_FLOATING_BF16(dtype, "binary op", [&] {
    visit_binary(op, s, [&](auto f) {
      binary_loop(f, n, static_cast<const scalar_t*>(a), static_cast<const scalar_t*>(b),
                  static_cast<scalar_t*>(out), idx);
    });
  });
}

CUDL_CPU_KERNELS_END

#if !defined(CUDL_CPU_AVX2_COPY)
namespace cudl::cpu {

void unary(UnaryOp op, double s, DType dtype, int64_t n, const void* in, void* out,
           const StridedIndex<2>* idx) {
  CUDL_CPU_KERNEL_CALL(unary, op, s, dtype, n, in, out, idx);
}

void binary(BinaryOp op, double s, DType dtype, int64_t n, const void* a, const void* b, void* out,
            const StridedIndex<3>* idx) {
  CUDL_CPU_KERNEL_CALL(binary, op, s, dtype, n, a, b, out, idx);
}

}  // namespace cudl::cpu
#endif
