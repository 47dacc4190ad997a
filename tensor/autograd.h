// Define-by-run reverse-mode autograd (PyTorch/Flashlight style).
//
// A differentiable op computes its output, then (when grad mode is on and an input requires
// grad) attaches a Node: the edges to its inputs and a backward function that captures only
// what backward needs, as detached tensors (no reference cycles through the graph). backward()
// orders the nodes reachable from the root topologically and runs them in reverse; leaf
// gradients accumulate (+=) into .grad(), intermediate gradients are summed in a buffer that is
// dropped as soon as its node ran. Each node releases its captured tensors after running unless
// retain_graph, so a second backward through it throws a clear error.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace cudl {

bool grad_mode_enabled();

// Disables graph recording in its scope (evaluation, optimiser updates, backward itself).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Where the gradient for one input goes: another node, or a leaf to accumulate into.
struct Edge {
  std::shared_ptr<Node> fn;
  std::shared_ptr<TensorImpl> leaf;
  Shape shape;  // what the gradient must look like
  DType dtype = kFloat32;
  Device device;
  bool valid() const { return fn || leaf; }
};

class Node {
 public:
  // Gets dL/d(output) and returns dL/d(input) for every input, in order; an entry may be
  // undefined when that input needs no gradient.
  using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

  Node(std::string name, std::vector<Edge> next, BackwardFn fn);
  const std::string& name() const { return name_; }
  const std::vector<Edge>& next_edges() const { return next_; }
  bool released() const { return !fn_; }
  std::vector<Tensor> apply(const Tensor& grad_output);
  void release();  // frees what backward captured

 private:
  std::string name_;
  std::vector<Edge> next_;
  BackwardFn fn_;
};

// True when grad mode is on and any defined input requires grad.
bool needs_grad(const std::vector<Tensor>& inputs);

// Records `out` as the result of an op on `inputs` (call only when needs_grad(inputs)).
void set_grad_fn(Tensor& out, const char* name, const std::vector<Tensor>& inputs,
                 Node::BackwardFn backward);

// Computes gradients of `root` with respect to every leaf that requires grad.
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph);

}  // namespace cudl
