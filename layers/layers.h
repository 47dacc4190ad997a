// Everything in layers/: the Module system, the layers ResNet and the fastai head need, the
// initialisers, and the functional ops they wrap.
#pragma once

#include "layers/basic.h"
#include "layers/batch_norm.h"
#include "layers/conv.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/module.h"
#include "layers/pooling.h"
#include "tensor/ops.h"
#include "tensor/ops/batch_norm.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/dropout.h"
#include "tensor/ops/linear.h"
#include "tensor/ops/pool.h"
