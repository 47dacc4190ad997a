// Everything in tensor/: include this to use cudl's tensors and ops.
#pragma once

#include "tensor/allocator.h"
#include "tensor/autocast.h"
#include "tensor/autograd.h"
#include "tensor/device.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/loss.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/metrics.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/shape.h"
#include "tensor/parallel.h"
#include "tensor/random.h"
#include "tensor/tensor.h"
