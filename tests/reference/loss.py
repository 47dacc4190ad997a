"""Reference values for the losses (tests/optim/test_parity_loss.cpp), computed by PyTorch in
float32 on the CPU: torch.nn.functional.binary_cross_entropy_with_logits (random and extreme
logits, soft targets, pos_weight) and cross_entropy (with and without class weights), each
with the reductions none, mean and sum, and the gradient of the logits for a given upstream
gradient."""
import torch
import torch.nn.functional as F

from common import saver

torch.manual_seed(0)
torch.set_num_threads(1)
save = saver("loss")
REDUCTIONS = ("none", "mean", "sum")


def run(name, loss_fn, x, extra):
    """Saves the inputs, then for each reduction the loss, upstream gradient and d/dlogits."""
    save(f"{name}_x", x)
    for k, v in extra.items():
        save(f"{name}_{k}", v)
    for red in REDUCTIONS:
        xr = x.clone().requires_grad_()
        out = loss_fn(xr, red)
        g = torch.rand_like(out) + 0.5  # a scalar for mean and sum
        out.backward(g)
        assert torch.isfinite(out).all() and torch.isfinite(xr.grad).all(), name
        save(f"{name}_{red}_out", out)
        save(f"{name}_{red}_gout", g)
        save(f"{name}_{red}_grad", xr.grad)


# ---- BCE-with-logits ----
x = torch.randn(16, 4) * 3
y = (torch.rand(16, 4) > 0.5).float()
run("bce_rand", lambda t, r: F.binary_cross_entropy_with_logits(t, y, reduction=r), x, {"y": y})

# Every logit magnitude that could overflow a naive formula, against targets 0, 1 and 0.3.
vals = torch.tensor([-1000.0, -100.0, -50.0, -20.0, -1.0, 0.0, 1.0, 20.0, 50.0, 100.0, 1000.0])
xe = vals.repeat_interleave(3).reshape(11, 3)
ye = torch.tensor([0.0, 1.0, 0.3]).repeat(11, 1)
run("bce_extreme", lambda t, r: F.binary_cross_entropy_with_logits(t, ye, reduction=r), xe, {"y": ye})

pw = torch.tensor([0.5, 1.0, 2.0, 3.5])
xp = torch.cat([torch.randn(12, 4) * 3, torch.tensor([[-1000.0, 1000.0, -100.0, 100.0]] * 2),
                torch.tensor([[1000.0, -1000.0, 100.0, -100.0]] * 2)])
yp = torch.cat([(torch.rand(12, 4) > 0.5).float(), torch.tensor([[1.0, 0.0, 1.0, 0.0]] * 2),
                torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]])])
run("bce_posw", lambda t, r: F.binary_cross_entropy_with_logits(t, yp, reduction=r, pos_weight=pw),
    xp, {"y": yp, "pos_weight": pw})

# ---- cross-entropy ----
xc = torch.randn(13, 7) * 2
tc = torch.randint(0, 7, (13,))
wc = torch.rand(7) + 0.25
run("ce_rand", lambda t, r: F.cross_entropy(t, tc, reduction=r), xc, {"t": tc})
run("ce_weight", lambda t, r: F.cross_entropy(t, tc, weight=wc, reduction=r), xc, {"t": tc, "w": wc})
xce = torch.tensor([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0], [100.0, 100.0, -100.0],
                    [0.0, 0.0, 0.0], [-100.0, -1000.0, -50.0]])
tce = torch.tensor([1, 1, 0, 2, 2])
run("ce_extreme", lambda t, r: F.cross_entropy(t, tce, reduction=r), xce, {"t": tce})
print("loss reference written")
