"""Reference trajectories for the optimisers (tests/optim/test_parity_optim.cpp), computed by
PyTorch in float32 on the CPU: four parameter tensors (one of them larger than the update's
8192-element chunk) and, for 20 steps, a fixed gradient sequence written by this script; the
parameters after every step, and the final optimiser state.

  adam           torch.optim.Adam, lr 1e-2, betas (0.9, 0.999)
  adam_l2        torch.optim.Adam with weight_decay 0.1 (coupled L2)
  adam_eps       torch.optim.Adam with eps 1e-3 and gradients ~1e-3, where the placement of eps
                 matters (checked here: torch adds it after the bias correction)
  adamw_recipe   RECIPE.md's decoupled decay reproduced by hand: p.mul_(1 - lr * wd), then
                 torch.optim.Adam with weight_decay 0; lr 1e-2, wd 0.5 (large enough to see),
                 betas (0.9, 0.99), eps 1e-8 (checked here against torch.optim.AdamW)
  adamw_groups   the same with two groups: tensors 0, 1 (lr 1e-2, wd 0.5) and 2, 3 (lr 3e-3, wd 0)
  sgd_momentum   torch.optim.SGD, lr 0.05, momentum 0.9, weight_decay 1e-2
  sgd_nesterov   lr 0.05, momentum 0.9, nesterov
  sgd_dampening  lr 0.05, momentum 0.9, dampening 0.1
  sgd_plain      lr 0.1

Also fastai v1's one-cycle schedule, by a transliteration of its OneCycleScheduler and
Stepper (stateful stepping after each batch), for the closed form in optim/schedule.cpp."""
import math

import numpy as np
import torch

from common import saver

torch.manual_seed(0)
torch.set_num_threads(1)
save = saver("optim")
STEPS = 20
SHAPES = [(5, 3), (7,), (2, 3, 4), (3, 5001)]

params0 = [torch.randn(*s) for s in SHAPES]
grads = [torch.randn(STEPS, *s) for s in SHAPES]
for k in range(len(SHAPES)):
    save(f"p{k}_init", params0[k])
    save(f"g{k}", grads[k])


def trajectory(make_opt, grad_scale=1.0, pre_step=None):
    """Runs STEPS steps; returns the parameters after each step (per tensor) and the optimiser."""
    ps = [p.clone().requires_grad_() for p in params0]
    opt = make_opt(ps)
    hist = [[] for _ in ps]
    for s in range(STEPS):
        for k, p in enumerate(ps):
            p.grad = grads[k][s].clone() * grad_scale
        if pre_step:
            with torch.no_grad():
                pre_step(opt)
        opt.step()
        for k, p in enumerate(ps):
            hist[k].append(p.detach().clone())
    return [torch.stack(h) for h in hist], opt, ps


def record(name, make_opt, grad_scale=1.0, pre_step=None):
    hist, opt, ps = trajectory(make_opt, grad_scale, pre_step)
    for k, h in enumerate(hist):
        save(f"{name}_p{k}", h)
        st = opt.state[ps[k]]
        for key in ("exp_avg", "exp_avg_sq", "momentum_buffer"):
            if st.get(key) is not None:  # SGD without momentum keeps None
                save(f"{name}_p{k}_{key}", st[key])
    return hist


def decoupled_decay(opt):
    """RECIPE.md / fastai v1 true_wd: p *= 1 - lr * wd before the step (wd kept outside Adam)."""
    for group in opt.param_groups:
        for p in group["params"]:
            p.mul_(1 - group["lr"] * group["recipe_wd"])


record("adam", lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.9, 0.999)))
record("adam_l2", lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1))
eps_hist = record("adam_eps", lambda ps: torch.optim.Adam(ps, lr=1e-2, eps=1e-3), grad_scale=1e-3)

# eps placement: one step by hand, eps after (modern torch) and before (torch <= 1.5) the bias
# correction; torch 1.13 must match the first and not the second.
g0, beta2, eps, lr = grads[0][0] * 1e-3, 0.999, 1e-3, 1e-2
m, v = 0.1 * g0, (1 - beta2) * g0 * g0
after = params0[0] - lr / 0.1 * m / (v.sqrt() / math.sqrt(1 - beta2) + eps)
before = params0[0] - lr * math.sqrt(1 - beta2) / 0.1 * m / (v.sqrt() + eps)
assert torch.allclose(eps_hist[0][0], after, rtol=1e-6, atol=1e-7), "eps is not after the bias correction"
assert not torch.allclose(eps_hist[0][0], before, rtol=1e-4, atol=1e-6), "test cannot tell eps placements apart"


def recipe_adamw(groups):
    def make(ps):
        opt = torch.optim.Adam([{"params": [ps[i] for i in idx], "lr": lr, "recipe_wd": wd}
                                for idx, lr, wd in groups], betas=(0.9, 0.99), eps=1e-8,
                               weight_decay=0)
        return opt
    return make


recipe = record("adamw_recipe", recipe_adamw([([0, 1, 2, 3], 1e-2, 0.5)]), pre_step=decoupled_decay)
torch_adamw, _, _ = trajectory(lambda ps: torch.optim.AdamW(ps, lr=1e-2, betas=(0.9, 0.99),
                                                            eps=1e-8, weight_decay=0.5))
for a, b in zip(recipe, torch_adamw):
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), "RECIPE's decoupled decay != torch AdamW"
record("adamw_groups", recipe_adamw([([0, 1], 1e-2, 0.5), ([2, 3], 3e-3, 0.0)]),
       pre_step=decoupled_decay)

record("sgd_momentum", lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-2))
record("sgd_nesterov", lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True))
record("sgd_dampening", lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1))
record("sgd_plain", lambda ps: torch.optim.SGD(ps, lr=0.1))


# ---- fastai v1 one-cycle, stepped the way its callback does ----
def annealing_cos(start, end, pct):
    return end + (start - end) / 2 * (np.cos(np.pi * pct) + 1)


class Stepper:
    def __init__(self, vals, n_iter, func):
        self.start, self.end = vals
        self.n_iter = max(1, n_iter)
        self.func = func
        self.n = 0

    def step(self):
        self.n += 1
        return self.func(self.start, self.end, self.n / self.n_iter)

    @property
    def is_done(self):
        return self.n >= self.n_iter


def one_cycle(n, lr_max, moms=(0.95, 0.85), div_factor=25.0, pct_start=0.3):
    a1 = int(n * pct_start)
    a2 = n - a1
    low = lr_max / div_factor
    lr_scheds = [Stepper((low, lr_max), a1, annealing_cos),
                 Stepper((lr_max, low / 1e4), a2, annealing_cos)]
    mom_scheds = [Stepper(moms, a1, annealing_cos), Stepper((moms[1], moms[0]), a2, annealing_cos)]
    lr, mom = lr_scheds[0].start, mom_scheds[0].start
    lrs, ms, idx = [], [], 0
    for _ in range(n):
        lrs.append(lr)  # the values this batch trains with
        ms.append(mom)
        if idx >= len(lr_scheds):  # on_batch_end: the cycle is over
            break
        lr, mom = lr_scheds[idx].step(), mom_scheds[idx].step()
        if lr_scheds[idx].is_done:
            idx += 1
    return np.array(lrs), np.array(ms)


for n, lr_max, pct in ((60, 1e-3, 0.3), (3, 1e-2, 0.3), (10, 4e-3, 0.25), (1000, 3e-3, 0.3)):
    lrs, ms = one_cycle(n, lr_max, pct_start=pct)
    save(f"onecycle_{n}_lr", lrs)
    save(f"onecycle_{n}_mom", ms)
    save(f"onecycle_{n}_cfg", np.array([n, lr_max, pct]))
print("optim reference written")
