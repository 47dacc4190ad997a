#include "tensor/autograd.h"

#include "tensor/profiler.h"

#include <unordered_map>
#include <unordered_set>

#include "tensor/ops/elementwise.h"

namespace cudl {

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_mode_enabled() { return g_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

Node::Node(std::string name, std::vector<Edge> next, BackwardFn fn)
    : name_(std::move(name)), next_(std::move(next)), fn_(std::move(fn)) {}

std::vector<Tensor> Node::apply(const Tensor& grad_output) {
  CUDL_CHECK(fn_, "trying to backward through ", name_,
             " a second time: its saved tensors were freed by the first backward. Pass "
             "retain_graph=true to the first backward if you need to do this.");
  return fn_(grad_output);
}

void Node::release() { fn_ = nullptr; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void set_grad_fn(Tensor& out, const char* name, const std::vector<Tensor>& inputs,
                 Node::BackwardFn backward) {
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    Edge e;
    if (t.defined() && t.requires_grad()) {
      if (t.grad_fn()) {
        e.fn = t.grad_fn();
      } else {
        e.leaf = t.impl_ptr();
      }
      e.shape = t.shape();
      e.dtype = t.dtype();
      e.device = t.device();
    }
    edges.push_back(std::move(e));
  }
  AutogradMeta& m = out.impl()->meta();
  m.requires_grad = true;
  m.grad_fn = std::make_shared<Node>(name, std::move(edges), std::move(backward));
}

namespace {

void check_grad(const Tensor& g, const Edge& e, const std::string& where) {
  CUDL_CHECK(g.shape() == e.shape, where, " returned a gradient of shape ", shape_str(g.shape()),
             " for an input of shape ", shape_str(e.shape));
  CUDL_CHECK(g.dtype() == e.dtype, where, " returned a ", toString(g.dtype()),
             " gradient for a ", toString(e.dtype), " input");
  CUDL_CHECK(g.device() == e.device, where, " returned a gradient on ", g.device().str(),
             " for an input on ", e.device.str());
}

void accumulate_leaf(TensorImpl* leaf, const Tensor& g) {
  AutogradMeta& m = leaf->meta();
  if (!m.grad.defined()) {
    // The incoming tensor may be shared with other edges: own a private copy.
    m.grad = g.clone();
  } else {
    add_(m.grad, g);
  }
}

}  // namespace

void run_backward(const Tensor& root, const Tensor& grad_in, bool retain_graph) {
  CUDL_CHECK(root.defined(), "backward() called on an undefined tensor");
  CUDL_CHECK(root.requires_grad(),
             "backward() on a tensor that does not require grad and has no grad_fn");
  Tensor grad = grad_in;
  if (!grad.defined()) {
    CUDL_CHECK(root.numel() == 1, "backward() without a gradient needs a one-element output; got ",
               shape_str(root.shape()), ". Pass the gradient of the output explicitly.");
    grad = ones_like(root);
  }
  CUDL_CHECK(grad.shape() == root.shape(), "backward(): gradient of shape ",
             shape_str(grad.shape()), " for an output of shape ", shape_str(root.shape()));
  CUDL_CHECK(grad.device() == root.device() && grad.dtype() == root.dtype(),
             "backward(): gradient is ", grad.info(), " but the output is ", root.info());

  NoGradGuard no_grad;
  if (!root.grad_fn()) {  // a leaf: its gradient is the given one
    accumulate_leaf(root.impl(), grad);
    return;
  }

  // Topological order by iterative DFS (post-order), then run in reverse.
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack;
  Node* start = root.grad_fn().get();
  stack.emplace_back(start, 0);
  seen.insert(start);
  while (!stack.empty()) {
    auto& [node, next_index] = stack.back();
    const auto& edges = node->next_edges();
    if (next_index < edges.size()) {
      Node* child = edges[next_index++].fn.get();
      if (child && seen.insert(child).second) stack.emplace_back(child, 0);
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }

  std::unordered_map<Node*, Tensor> buffers;
  buffers[start] = grad;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    auto found = buffers.find(node);
    if (found == buffers.end()) continue;  // no gradient flows here
    Tensor g = std::move(found->second);
    buffers.erase(found);
    std::vector<Tensor> grads;
    {
      ProfileRange range(node->name());
      grads = node->apply(g);
    }
    if (!retain_graph) node->release();
    const auto& edges = node->next_edges();
    CUDL_CHECK(grads.size() == edges.size(), node->name(), " returned ", grads.size(),
               " gradients for ", edges.size(), " inputs");
    for (size_t i = 0; i < edges.size(); ++i) {
      const Edge& e = edges[i];
      if (!e.valid() || !grads[i].defined()) continue;
      check_grad(grads[i], e, node->name());
      if (e.leaf) {
        accumulate_leaf(e.leaf.get(), grads[i]);
      } else {
        Tensor& buf = buffers[e.fn.get()];
        buf = buf.defined() ? add(buf, grads[i]) : grads[i];
      }
    }
  }
}

}  // namespace cudl
