"""Reference values for the metrics (tests/optim/test_parity_metrics.cpp), computed here
independently of cudl's one-pass histogram: one torch comparison per threshold, the way
utils_cv scores (`(probs > threshold) == targets.byte()`), and scikit-learn's definitions
(precision/recall/F1 with zero_division=0, average precision) written out in NumPy, since
scikit-learn is not a dependency.

Cases (float32 probabilities, 0/1 targets):
  rand  50 x 4, half the probabilities exactly on sweep thresholds (strict '>' matters), the
        rest uniform
  tie   20 x 3 with probabilities in {0.12, 0.31, 0.83}: every metric is flat over whole
        threshold ranges, so the optimal threshold must be the first of a tie
  ap    40 x 3 with scores rounded to 0.1 (ties) and a class without positives (AP 0)
For each: the counts (TP, FP, FN, TN per threshold and class), rows entirely right, the eight
metrics at the 21 thresholds np.linspace(0, 1, 21), the optimal threshold index of each
metric (np.argmax: the first maximum), and the per-class average precision and mAP."""
import numpy as np
import torch

from common import saver

save = saver("metrics")
rng = np.random.RandomState(0)
THRESHOLDS = np.linspace(0, 1, 21)
METRICS = ["hamming_accuracy", "zero_one_accuracy", "precision_micro", "recall_micro",
           "f1_micro", "precision_macro", "recall_macro", "f1_macro"]

# cudl computes threshold k as k / 20 in double, then rounds to float32: the same float32
# values as torch's comparison with the Python float from linspace.
for k, t in enumerate(THRESHOLDS):
    assert np.float32(k / 20) == np.float32(t), k


def ratio(num, den):
    return num / den if den > 0 else 0.0  # zero_division=0


def sweep(probs, targets):
    p, y = torch.from_numpy(probs), torch.from_numpy(targets)
    rows = []
    counts = {k: [] for k in ("tp", "fp", "fn", "tn")}
    exact = []
    for t in THRESHOLDS:
        pred = p > float(t)  # torch compares in float32, strict
        truth = y.byte().bool()
        hamming = (pred == truth).float().mean().item()  # utils_cv's hamming_accuracy
        zero_one = (pred == truth).all(1).float().mean().item()  # utils_cv's zero_one_accuracy
        tp = (pred & truth).sum(0).numpy().astype(np.int64)
        fp = (pred & ~truth).sum(0).numpy().astype(np.int64)
        fn = (~pred & truth).sum(0).numpy().astype(np.int64)
        tn = (~pred & ~truth).sum(0).numpy().astype(np.int64)
        for k, v in (("tp", tp), ("fp", fp), ("fn", fn), ("tn", tn)):
            counts[k].append(v)
        exact.append(int((pred == truth).all(1).sum()))
        TP, FP, FN = tp.sum(), fp.sum(), fn.sum()
        per_p = [ratio(a, a + b) for a, b in zip(tp, fp)]
        per_r = [ratio(a, a + b) for a, b in zip(tp, fn)]
        per_f = [ratio(2 * a, 2 * a + b + c) for a, b, c in zip(tp, fp, fn)]
        rows.append([hamming, zero_one, ratio(TP, TP + FP), ratio(TP, TP + FN),
                     ratio(2 * TP, 2 * TP + FP + FN), np.mean(per_p), np.mean(per_r),
                     np.mean(per_f)])
    m = np.array(rows, dtype=np.float64)
    # Ties are decided on the values the counts give (float32 means could blur them).
    best = np.array([int(np.argmax(m[:, j])) for j in range(len(METRICS))], dtype=np.int64)
    return m, {k: np.stack(v) for k, v in counts.items()}, np.array(exact, dtype=np.int64), best


def average_precision(scores, truth):
    """scikit-learn's average_precision_score for one class, written out: the precision and
    recall at each distinct score (descending), AP = sum (R_n - R_{n-1}) P_n."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], truth[order]
    distinct = np.where(np.diff(s))[0]
    ends = np.r_[distinct, len(s) - 1]  # last index of each tie group
    tps = np.cumsum(y)[ends]
    fps = 1 + ends - tps
    if tps[-1] == 0:
        return 0.0  # no positives: recall is set to 1 everywhere, AP 0
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def write(case, probs, targets):
    probs = probs.astype(np.float32)
    targets = targets.astype(np.float32)
    m, counts, exact, best = sweep(probs, targets)
    save(f"{case}_probs", probs)
    save(f"{case}_targets", targets)
    save(f"{case}_sweep", m)
    for k, v in counts.items():
        save(f"{case}_{k}", v)
    save(f"{case}_exact", exact)
    save(f"{case}_best", best)
    ap = np.array([average_precision(probs[:, j].astype(np.float64), targets[:, j] > 0.5)
                   for j in range(probs.shape[1])])
    save(f"{case}_ap", ap)
    save(f"{case}_map", np.array(ap.mean()))
    return m


n, c = 50, 4
on_grid = rng.randint(0, 21, size=(n, c)).astype(np.float64) / 20
uniform = rng.rand(n, c)
probs = np.where(rng.rand(n, c) < 0.5, on_grid, uniform)
targets = (rng.rand(n, c) < 0.45).astype(np.float64)
write("rand", probs, targets)

probs = rng.choice([0.12, 0.31, 0.83], size=(20, 3))
targets = (probs + rng.rand(20, 3) * 0.4 > 0.6).astype(np.float64)
m = write("tie", probs, targets)
best = m[:, 1].max()
assert (m[:, 1] == best).sum() >= 2, "the tie case has no tie in zero-one accuracy"

probs = np.round(rng.rand(40, 3), 1)
targets = (rng.rand(40, 3) < 0.5).astype(np.float64)
targets[:, 2] = 0
write("ap", probs, targets)
print("metrics reference written")
