// Everything in optim/: optimisers (SGD, Adam, AdamW) and learning-rate schedules.
#pragma once

#include "optim/adam.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
