#include "tensor/cpu/conv_onednn.h"

#ifdef CUDL_WITH_ONEDNN

#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>

#include "tensor/parallel.h"
#include "tensor/tensor.h"

namespace cudl::cpu::onednn {

namespace {

using dnnl::memory;
using tag = memory::format_tag;

const dnnl::engine& cpu_engine() {
  static const dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// oneDNN's JIT-compiled kernels: "jit:<isa>", "jit_bf16:<isa>", "jit_bf16_1x1:<isa>" and the
// brgemm-based "brgconv:<isa>" / "brgconv_1x1:<isa>" (its choice for bfloat16 training on AMX
// CPUs); not its reference code ("ref:...") nor its GEMM-based fallbacks ("gemm:...").
bool is_jit(const dnnl::primitive_desc_base& pd) {
  const char* impl = pd.impl_info_str();
  return std::strncmp(impl, "jit", 3) == 0 || std::strncmp(impl, "brg", 3) == 0;
}

// A reorder between a plain (user) layout and the one a primitive wants; empty when the two
// are the same.
struct Reorder {
  memory::desc want;
  dnnl::reorder prim;
  bool needed = false;
  Reorder() = default;
  Reorder(const memory::desc& from, const memory::desc& to) : want(to) {
    needed = from != to;
    if (needed)
      prim = dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), from, cpu_engine(), to));
  }
};

// Everything oneDNN needs for one convolution shape; the backward parts are made on first use.
struct Entry {
  memory::desc src_md, weights_md, bias_md, dst_md;  // cudl's: NCHW or NHWC, (G)OIHW, (O)
  memory::dims strides, dilates, pad_l, pad_r;
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd;
  bool fwd_ok = false, fwd_jit = false;
  Reorder fwd_src, fwd_weights, fwd_dst;  // dst: from the primitive's layout to cudl's

  std::once_flag bwd_once;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_data bwd_data;
  bool bwd_data_ok = false, bwd_data_jit = false;
  Reorder bd_diff_dst, bd_weights, bd_diff_src;  // diff_src: back to cudl's layout
  dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd;
  dnnl::convolution_backward_weights bwd_weights;
  bool bwd_weights_ok = false, bwd_weights_jit = false;
  Reorder bw_src, bw_diff_dst, bw_diff_weights;  // diff_weights: back to (G)OIHW
};

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  // Scratch memory comes from cudl's allocator with each call: counted in memory_stats, and a
  // primitive may run on several threads' behalf at once.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

memory::desc any_like(const memory::desc& md) {
  return memory::desc(md.dims(), md.data_type(), tag::any);
}

memory::data_type onednn_type(DType dtype) {
  return dtype == kBFloat16 ? memory::data_type::bf16 : memory::data_type::f32;
}

std::shared_ptr<Entry> make_entry(DType dtype, const ConvGeometry& g, bool has_bias) {
  auto e = std::make_shared<Entry>();
  const memory::data_type dt = onednn_type(dtype);
  // Channels-last activations are reordered from and to NHWC like NCHW ones; the weights are
  // OIHW in both (conv_geometry.h).
  const tag act = g.channels_last ? tag::nhwc : tag::nchw;
  e->src_md = memory::desc({g.n, g.c, g.h, g.w}, dt, act);
  e->dst_md = memory::desc({g.n, g.o, g.oh, g.ow}, dt, act);
  e->weights_md = g.groups == 1 ? memory::desc({g.o, g.c, g.kh, g.kw}, dt, tag::oihw)
                                : memory::desc({g.groups, g.o / g.groups, g.c / g.groups, g.kh,
                                                g.kw},
                                               dt, tag::goihw);
  if (has_bias) e->bias_md = memory::desc({g.o}, dt, tag::x);
  e->strides = {g.sh, g.sw};
  e->dilates = {g.dh - 1, g.dw - 1};  // oneDNN counts the gaps: 0 = no dilation
  // Right padding as large as the left: oneDNN's output size formula then floors exactly as
  // window_out_size does.
  e->pad_l = {g.ph, g.pw};
  e->pad_r = {g.ph, g.pw};
  try {
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_training,
                                      dnnl::algorithm::convolution_direct, any_like(e->src_md),
                                      any_like(e->weights_md), e->bias_md, any_like(e->dst_md),
                                      e->strides, e->dilates, e->pad_l, e->pad_r);
    e->fwd_pd = dnnl::convolution_forward::primitive_desc(d, user_scratchpad(), cpu_engine());
    e->fwd = dnnl::convolution_forward(e->fwd_pd);
    e->fwd_src = Reorder(e->src_md, e->fwd_pd.src_desc());
    e->fwd_weights = Reorder(e->weights_md, e->fwd_pd.weights_desc());
    e->fwd_dst = Reorder(e->fwd_pd.dst_desc(), e->dst_md);
    e->fwd_ok = true;
    e->fwd_jit = is_jit(e->fwd_pd);
  } catch (const dnnl::error&) {
    e->fwd_ok = false;  // no implementation for this shape: the caller uses im2col
  }
  return e;
}

void make_backward(Entry& e) {
  try {
    dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, any_like(e.src_md),
                                            any_like(e.weights_md), any_like(e.dst_md), e.strides,
                                            e.dilates, e.pad_l, e.pad_r);
    e.bwd_data_pd = dnnl::convolution_backward_data::primitive_desc(d, user_scratchpad(),
                                                                    cpu_engine(), e.fwd_pd);
    e.bwd_data = dnnl::convolution_backward_data(e.bwd_data_pd);
    e.bd_diff_dst = Reorder(e.dst_md, e.bwd_data_pd.diff_dst_desc());
    e.bd_weights = Reorder(e.weights_md, e.bwd_data_pd.weights_desc());
    e.bd_diff_src = Reorder(e.bwd_data_pd.diff_src_desc(), e.src_md);
    e.bwd_data_ok = true;
    e.bwd_data_jit = is_jit(e.bwd_data_pd);
  } catch (const dnnl::error&) {
    e.bwd_data_ok = false;
  }
  try {
    dnnl::convolution_backward_weights::desc d(
        dnnl::algorithm::convolution_direct, any_like(e.src_md), any_like(e.weights_md),
        any_like(e.dst_md), e.strides, e.dilates, e.pad_l, e.pad_r);
    e.bwd_weights_pd = dnnl::convolution_backward_weights::primitive_desc(d, user_scratchpad(),
                                                                          cpu_engine(), e.fwd_pd);
    e.bwd_weights = dnnl::convolution_backward_weights(e.bwd_weights_pd);
    e.bw_src = Reorder(e.src_md, e.bwd_weights_pd.src_desc());
    e.bw_diff_dst = Reorder(e.dst_md, e.bwd_weights_pd.diff_dst_desc());
    e.bw_diff_weights = Reorder(e.bwd_weights_pd.diff_weights_desc(), e.weights_md);
    e.bwd_weights_ok = true;
    e.bwd_weights_jit = is_jit(e.bwd_weights_pd);
  } catch (const dnnl::error&) {
    e.bwd_weights_ok = false;
  }
}

// Entries by element type, shape, bias and thread count (oneDNN's kernels are laid out for a
// thread count). A workload sees a handful of shapes; the cache is cleared if it ever grows past
// kMaxEntries.
constexpr size_t kMaxEntries = 512;
using Key = std::array<int64_t, 19>;

std::shared_ptr<Entry> entry(DType dtype, const ConvGeometry& g, bool has_bias) {
  static std::mutex mutex;
  static std::map<Key, std::shared_ptr<Entry>> cache;
  const Key key = {g.n,
                   g.c,
                   g.h,
                   g.w,
                   g.o,
                   g.kh,
                   g.kw,
                   g.sh,
                   g.sw,
                   g.ph,
                   g.pw,
                   g.dh,
                   g.dw,
                   g.groups,
                   g.oh,
                   has_bias,
                   get_num_threads(),
                   static_cast<int64_t>(dtype),
                   g.channels_last};
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() >= kMaxEntries) cache.clear();
  auto e = make_entry(dtype, g, has_bias);
  cache.emplace(key, e);
  return e;
}

// A buffer of `md`'s size from cudl's allocator, as a oneDNN memory.
memory scratch_memory(const memory::desc& md, Tensor& owner) {
  owner = empty({static_cast<int64_t>(md.get_size())}, TensorOptions(kUInt8));
  return memory(md, cpu_engine(), owner.data_ptr());
}

memory user_memory(const memory::desc& md, const void* p) {
  return memory(md, cpu_engine(), const_cast<void*>(p));  // inputs are only read
}

// `from` in the layout r wants: `from` itself, or a reordered copy kept alive by `owner`.
memory to_layout(dnnl::stream& s, const Reorder& r, memory from, Tensor& owner) {
  if (!r.needed) return from;
  memory to = scratch_memory(r.want, owner);
  r.prim.execute(s, from, to);
  return to;
}

[[noreturn]] void rethrow(const dnnl::error& err, const char* what) {
  CUDL_THROW("conv2d (oneDNN ", what, "): ", err.what());
}

}  // namespace

std::string version() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

bool native_bf16() {
  static const bool native = [] {
    const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
    return (isa & bf16) == bf16;  // the ISA values are bit sets: each holds those it extends
  }();
  return native;
}

bool conv2d_forward(DType dtype, const ConvGeometry& g, const void* x, const void* w,
                    const void* bias, void* y, bool jit_only) {
  if (dtype == kBFloat16 && !native_bf16()) return false;
  std::shared_ptr<Entry> e = entry(dtype, g, bias != nullptr);
  if (!e->fwd_ok || (jit_only && !e->fwd_jit)) return false;
  try {
    dnnl::stream s(cpu_engine());
    Tensor src_t, w_t, dst_t, pad_t;
    memory src = to_layout(s, e->fwd_src, user_memory(e->src_md, x), src_t);
    memory wts = to_layout(s, e->fwd_weights, user_memory(e->weights_md, w), w_t);
    memory user_dst = user_memory(e->dst_md, y);
    memory dst = e->fwd_dst.needed ? scratch_memory(e->fwd_pd.dst_desc(), dst_t) : user_dst;
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src},
        {DNNL_ARG_WEIGHTS, wts},
        {DNNL_ARG_DST, dst},
        {DNNL_ARG_SCRATCHPAD, scratch_memory(e->fwd_pd.scratchpad_desc(), pad_t)}};
    if (bias) args.emplace(DNNL_ARG_BIAS, user_memory(e->bias_md, bias));
    e->fwd.execute(s, args);
    if (e->fwd_dst.needed) e->fwd_dst.prim.execute(s, dst, user_dst);
    s.wait();
  } catch (const dnnl::error& err) {
    rethrow(err, "forward");
  }
  return true;
}

BackwardDone conv2d_backward(DType dtype, const ConvGeometry& g, const void* x, const void* w,
                             const void* dy, void* dx, void* dw, bool jit_only) {
  BackwardDone done;
  if (dtype == kBFloat16 && !native_bf16()) return done;
  // The forward entry (made by the forward pass) carries the backward primitives; bias does
  // not change them, so look it up without.
  std::shared_ptr<Entry> e = entry(dtype, g, false);
  if (!e->fwd_ok) return done;
  std::call_once(e->bwd_once, [&] { make_backward(*e); });
  const bool do_dx = dx && e->bwd_data_ok && (!jit_only || e->bwd_data_jit);
  const bool do_dw = dw && e->bwd_weights_ok && (!jit_only || e->bwd_weights_jit);
  if (!do_dx && !do_dw) return done;
  try {
    dnnl::stream s(cpu_engine());
    memory user_dy = user_memory(e->dst_md, dy);
    Tensor dy_t, dy2_t, w_t, dx_t, x_t, dw_t, pad_t;
    memory dy_data;  // dy in the backward-data layout, reused by the weights pass when equal
    if (do_dx) {
      dy_data = to_layout(s, e->bd_diff_dst, user_dy, dy_t);
      memory wts = to_layout(s, e->bd_weights, user_memory(e->weights_md, w), w_t);
      memory user_dx = user_memory(e->src_md, dx);
      memory diff_src =
          e->bd_diff_src.needed ? scratch_memory(e->bwd_data_pd.diff_src_desc(), dx_t) : user_dx;
      e->bwd_data.execute(
          s, {{DNNL_ARG_DIFF_DST, dy_data},
              {DNNL_ARG_WEIGHTS, wts},
              {DNNL_ARG_DIFF_SRC, diff_src},
              {DNNL_ARG_SCRATCHPAD, scratch_memory(e->bwd_data_pd.scratchpad_desc(), pad_t)}});
      if (e->bd_diff_src.needed) e->bd_diff_src.prim.execute(s, diff_src, user_dx);
      s.wait();
      w_t = Tensor();  // the weights pass needs none of these: lower the peak
      dx_t = Tensor();
      pad_t = Tensor();
      done.dx = true;
    }
    if (do_dw) {
      memory src = to_layout(s, e->bw_src, user_memory(e->src_md, x), x_t);
      memory ddst = do_dx && dy_data.get_desc() == e->bw_diff_dst.want
                        ? dy_data
                        : to_layout(s, e->bw_diff_dst, user_dy, dy2_t);
      memory user_dw = user_memory(e->weights_md, dw);
      memory diff_w = e->bw_diff_weights.needed
                          ? scratch_memory(e->bwd_weights_pd.diff_weights_desc(), dw_t)
                          : user_dw;
      Tensor pad2_t;
      e->bwd_weights.execute(
          s, {{DNNL_ARG_SRC, src},
              {DNNL_ARG_DIFF_DST, ddst},
              {DNNL_ARG_DIFF_WEIGHTS, diff_w},
              {DNNL_ARG_SCRATCHPAD, scratch_memory(e->bwd_weights_pd.scratchpad_desc(), pad2_t)}});
      if (e->bw_diff_weights.needed) e->bw_diff_weights.prim.execute(s, diff_w, user_dw);
      done.dw = true;
    }
    s.wait();
  } catch (const dnnl::error& err) {
    rethrow(err, "backward");
  }
  return done;
}

}  // namespace cudl::cpu::onednn

#else  // built without oneDNN: every call declines

namespace cudl::cpu::onednn {

std::string version() {
  return "";
}

bool native_bf16() {
  return false;
}

bool conv2d_forward(DType, const ConvGeometry&, const void*, const void*, const void*, void*,
                    bool) {
  return false;
}

BackwardDone conv2d_backward(DType, const ConvGeometry&, const void*, const void*, const void*,
                             void*, void*, bool) {
  return {};
}

}  // namespace cudl::cpu::onednn

#endif
