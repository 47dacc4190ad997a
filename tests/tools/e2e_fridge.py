"""End to end through the programs users run, on a tiny generated dataset at a small size:
fridge_train -> killed in the middle of epoch 4 (SIGKILL) -> fridge_train --resume -> fridge_eval (score)
-> fridge_eval --predict, checking the files and their contents, that the resumed run equals an
uninterrupted one, and the exit codes of bad invocations.

usage: e2e_fridge.py FRIDGE_TRAIN FRIDGE_EVAL WORK_DIR
"""
import csv
import json
import os
import random
import resource
import re
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
from PIL import Image, ImageDraw

TRAIN, EVAL, WORK = sys.argv[1:4]
EPOCHS = 6


def common(epochs=EPOCHS):
    return ["--size", "32", "--bs", "4", "--epochs", str(epochs), "--lr", "1e-3", "--threads", "1",
            "--workers", "1", "--no-progress", "--schedule", "one-cycle"]


COMMON = common()
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(args, **kw):
    # The programs run on the CPU unless told otherwise: the checks rely on its reproducibility
    # (bit-identical resumes, the layouts' equal losses, the Winograd choice); the CUDA section
    # at the end asks for the GPU itself.
    if args[0] in (TRAIN, EVAL) and "--device" not in args:
        args = args + ["--device", "cpu"]
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    return r.returncode, r.stdout + r.stderr


# ---- a tiny dataset: coloured shapes; CRLF line ends, a quoted field, a BOM ---------------------
shutil.rmtree(WORK, ignore_errors=True)
data = os.path.join(WORK, "data")
os.makedirs(os.path.join(data, "images"))
rng = random.Random(7)
kinds = {"red_square": (200, 30, 30), "green_disc": (30, 180, 40), "blue_bar": (30, 60, 220)}
rows = []
for i in range(40):
    img = Image.new("RGB", (48, 64), tuple(rng.randrange(60, 200) for _ in range(3)))
    d = ImageDraw.Draw(img)
    present = [k for k in kinds if rng.random() < 0.5] or [rng.choice(list(kinds))]
    for k in present:
        x, y = rng.randrange(2, 30), rng.randrange(2, 44)
        if k == "red_square":
            d.rectangle([x, y, x + 14, y + 14], fill=kinds[k])
        elif k == "green_disc":
            d.ellipse([x, y, x + 14, y + 14], fill=kinds[k])
        else:
            d.rectangle([x, y, x + 4, y + 18], fill=kinds[k])
    name = f"img {i}.jpg" if i == 3 else f"{i}.jpg"  # a space in one name: quoted field
    img.save(os.path.join(data, "images", name), quality=92)
    rows.append((name, " ".join(present)))
with open(os.path.join(data, "labels.csv"), "w", newline="", encoding="utf-8-sig") as f:
    w = csv.writer(f, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(["filename", "labels"])
    w.writerows(rows)

# ---- reference: one uninterrupted run -----------------------------------------------------------
ref = os.path.join(WORK, "ref")
code, out = run([TRAIN, "--data", data, "--out", ref] + COMMON)
check(code == 0, "uninterrupted fridge_train exits 0")
if code != 0:
    print(out)
    sys.exit(1)
check("Optimal threshold" in out and "Wrote" in out, "fridge_train prints the optimal threshold and where the outputs are")
for name in ["model.h5", "checkpoint.h5", "history.csv", "metrics.json", "predictions.csv", "report.html"]:
    check(os.path.getsize(os.path.join(ref, name)) > 0, f"{name} written")

# ---- interrupted run: SIGKILL in the middle of epoch 3, then --resume ---------------------------
run_dir = os.path.join(WORK, "run")
p = subprocess.Popen([TRAIN, "--data", data, "--out", run_dir, "--device", "cpu"] + COMMON, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, text=True)
hist = os.path.join(run_dir, "history.csv")
ckpt = os.path.join(run_dir, "checkpoint.h5")
deadline = time.time() + 600
def checkpoint_epoch():
    try:
        with h5py.File(ckpt, "r") as f:
            return int(f.attrs["epoch"])
    except (OSError, KeyError):
        return 0


while time.time() < deadline:
    # Checkpoints are written in the background (the newest replaces one still waiting): wait
    # for one of epoch 2 or later and for epoch 3 in history.csv, then kill inside epoch 4.
    if (os.path.exists(hist) and len(open(hist).read().strip().splitlines()) >= 4
            and checkpoint_epoch() >= 2):
        break
    if p.poll() is not None:
        break
    time.sleep(0.05)
time.sleep(0.3)  # somewhere inside epoch 4
killed_while_running = p.poll() is None
p.send_signal(signal.SIGKILL)
p.wait()
check(killed_while_running, "fridge_train was killed while still training")
with h5py.File(ckpt, "r") as f:
    done = int(f.attrs["epoch"])
    check(f.attrs["format"] in ("cudl-checkpoint", b"cudl-checkpoint"), "the checkpoint left by the kill opens in h5py")
    check("optimizer" in f, "the checkpoint holds the optimiser state")
check(2 <= done < EPOCHS, f"the checkpoint holds a completed epoch in the middle of the run ({done})")
leftovers = [n for n in os.listdir(run_dir) if ".tmp" in n]
check(leftovers == [] or all(os.path.getsize(os.path.join(run_dir, n)) >= 0 for n in leftovers),
      "no half-written output replaced a good one")
for name in ("model.h5", "report.html"):
    check(not os.path.exists(os.path.join(run_dir, name)), f"{name} is not written before the end")

before = open(ckpt, "rb").read()
code, out = run([TRAIN, "--data", data, "--out", run_dir] + COMMON)
check(code == 1 and f"unfinished run (epoch {done} of {EPOCHS})" in out and "--resume" in out
      and open(ckpt, "rb").read() == before,
      "a new run into the killed run's folder is refused, saying --resume, and the checkpoint stays")
code, out = run([TRAIN, "--data", data, "--out", run_dir, "--resume"] + common(done - 1))
check(code == 1 and f"already trained {done} epochs" in out,
      "--resume with fewer --epochs than the checkpoint has done is refused")
code, out = run([TRAIN, "--data", data, "--out", run_dir, "--resume"] + COMMON)
check(code == 0, "fridge_train --resume exits 0")
check(f"Resuming after epoch {done}" in out, "the resumed run says where it continues")
h_ref = list(csv.DictReader(open(os.path.join(ref, "history.csv"))))
h_run = list(csv.DictReader(open(hist)))
check([int(r["epoch"]) for r in h_run] == list(range(1, EPOCHS + 1)), "history.csv has every epoch once")
for col in ["train_loss", "valid_loss", "train_hamming", "valid_hamming", "train_zero_one", "valid_zero_one"]:
    a = np.array([float(r[col]) for r in h_run])
    b = np.array([float(r[col]) for r in h_ref])
    check(np.allclose(a, b, rtol=1e-6, atol=1e-7), f"resumed run equals the uninterrupted one: {col}")
m_ref = json.load(open(os.path.join(ref, "metrics.json")))
m_run = json.load(open(os.path.join(run_dir, "metrics.json")))
check(abs(m_ref["valid"]["hamming_accuracy"] - m_run["valid"]["hamming_accuracy"]) < 1e-9,
      "same final validation metrics after the resume")
check("differ from the checkpoint" not in out and "Note:" not in out,
      "a resume with the same settings says nothing about them")

# ---- Ctrl-C: SIGINT stops at the next batch, after the checkpoint in flight; --resume goes on ----
intr = os.path.join(WORK, "run_sigint")
p = subprocess.Popen([TRAIN, "--data", data, "--out", intr, "--device", "cpu"] + COMMON,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
intr_hist = os.path.join(intr, "history.csv")
deadline = time.time() + 600
while time.time() < deadline and p.poll() is None:
    if os.path.exists(intr_hist) and len(open(intr_hist).read().strip().splitlines()) >= 2:
        break
    time.sleep(0.05)
interrupted_while_running = p.poll() is None
p.send_signal(signal.SIGINT)
out = p.communicate()[0]
check(interrupted_while_running and p.returncode == 130 and "stopped; --resume (with the same --out) "
      "continues from" in out and not [n for n in os.listdir(intr) if ".tmp" in n]
      and "model.h5" not in os.listdir(intr),
      f"SIGINT stops fridge_train with exit 130, the --resume hint and no temporary file "
      f"(exit {p.returncode})")
code, out = run([TRAIN, "--out", intr, "--resume"])
check(code == 0 and len(list(csv.DictReader(open(intr_hist)))) == EPOCHS,
      "--resume alone finishes the interrupted run")

# ---- --resume with other settings (on copies of the finished run) -------------------------------
def copy_of(src, name):
    dst = os.path.join(WORK, name)
    shutil.copytree(src, dst)
    return dst


def labelled_data(name, tables, header=("filename", "labels")):
    """WORK/name: the test images (a link to them) with labels files {file name: rows}."""
    folder = os.path.join(WORK, name)
    os.makedirs(folder)
    os.symlink(os.path.join(data, "images"), os.path.join(folder, "images"))
    for csv_name, table in tables.items():
        with open(os.path.join(folder, csv_name), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(table)
    return folder


def same_files(a, b, names=("model.h5", "checkpoint.h5", "history.csv", "metrics.json")):
    return all(open(os.path.join(a, n), "rb").read() == open(os.path.join(b, n), "rb").read() for n in names)


other = copy_of(run_dir, "run_other")
code, out = run([TRAIN, "--data", data, "--out", other, "--resume"] + COMMON + ["--seed", "3"])
check(code == 1 and "another train/validation split (other validation images, as many)" in out
      and "Resume with the data and the --seed and --valid-pct of that run" in out,
      "--resume with another --seed (another split) is refused, saying why")
check(same_files(other, run_dir), "the refused resume leaves the run's files as they were")
# The same seed on the same images listed in another order: another split, found by its files.
shuffled = labelled_data("data_shuffled", {"labels.csv": reversed(rows)})
code, out = run([TRAIN, "--data", shuffled, "--out", other, "--resume"] + COMMON)
check(code == 1 and "other validation images, as many" in out,
      "--resume on the same images listed in another order (another split) is refused")
code, out = run([TRAIN, "--data", data, "--out", other, "--resume", "--arch", "resnet34"] + COMMON)
check(code == 1 and "checkpoint is for fastai_resnet18" in out and "give --arch resnet18" in out,
      "--resume with another --arch is refused, naming the checkpoint's")
code, out = run([TRAIN, "--data", data, "--out", other, "--resume", "--freeze-body"] + COMMON)
check(code == 1 and "without --freeze-body" in out and "optimiser state" in out,
      "--resume with --freeze-body turned on is refused, saying why")
check(same_files(other, run_dir), "the refused resumes leave the run's files as they were")
# The data moved elsewhere: the same split, resumed without a word about settings.
moved = copy_of(data, "data_moved")
code, out = run([TRAIN, "--data", moved, "--out", other, "--resume"] + COMMON)
check(code == 0 and "Note:" not in out and f"Resuming after epoch {EPOCHS}" in out,
      "--resume with the data moved to another folder goes on, with nothing to note")
more = common(EPOCHS + 1)
more[more.index("--lr") + 1] = "5e-4"
code, out = run([TRAIN, "--data", data, "--out", other, "--resume", "--no-winograd"] + more)
check(code == 0 and f"Resuming after epoch {EPOCHS}" in out, "--resume with more epochs goes on")
note = [l for l in out.splitlines() if l.startswith("Note: resuming with settings")]
check(len(note) == 1 and all(k in note[0] for k in ("--epochs 7 (was 6)", "--lr 0.0005 (was 0.001)",
                                                    "--winograd false (was true)"))
      and note[0].count("(was") == 3,
      "--resume names each setting that differs from the checkpoint's run, and only those: "
      + (note[0] if note else out[-300:]))
check(len(list(csv.DictReader(open(os.path.join(other, "history.csv"))))) == EPOCHS + 1,
      "the extended run has one more epoch in history.csv")
# --resume alone: the run's own options (its data, size, batch size, lr, schedule, ...) unless
# given again, here one more epoch; --weights starts a new run instead, so it cannot be combined.
bare = copy_of(run_dir, "run_bare")
code, out = run([TRAIN, "--out", bare, "--resume", "--epochs", str(EPOCHS + 1)])
restored = next((l for l in out.splitlines() if l.startswith("Resuming the run in")), "")
note = [l for l in out.splitlines() if l.startswith("Note: resuming with settings")]
check(code == 0 and f"Resuming after epoch {EPOCHS}" in out and all(
          k in restored for k in ("--size 32", "--bs 4", "--lr 0.001", "--schedule one-cycle",
                                  "--threads 1", "--csv " + os.path.join(data, "labels.csv")))
      and "--epochs" not in restored and len(note) == 1 and note[0].count("(was") == 1
      and not os.path.exists(os.path.join(bare, "demo_data"))
      and len(list(csv.DictReader(open(os.path.join(bare, "history.csv"))))) == EPOCHS + 1,
      "--resume alone continues on the run's data with its options, given ones named: "
      + (restored or out[-300:]))
code, out = run([TRAIN, "--out", bare, "--resume", "--weights", os.path.join(run_dir, "model.h5")])
check(code == 2 and "--weights" in out, "--resume with --weights is a usage error (exit 2)")
# A separate validation file: the split is its files, in any order; --seed then only shuffles.
vdata = labelled_data("data_vcsv", {"train.csv": rows[:32], "valid.csv": rows[32:],
                                     "valid_reversed.csv": rows[:31:-1]})
vrun = os.path.join(WORK, "run_vcsv")
vargs = ["--data", vdata, "--csv", os.path.join(vdata, "train.csv"), "--out", vrun]
code, out = run([TRAIN] + vargs + ["--valid-csv", os.path.join(vdata, "valid.csv")] + common(1))
check(code == 0, "fridge_train --valid-csv trains")
code, out = run([TRAIN] + vargs + ["--valid-csv", os.path.join(vdata, "valid_reversed.csv"), "--resume",
                 "--seed", "3"] + common(2))
note = [l for l in out.splitlines() if l.startswith("Note: resuming with settings")]
check(code == 0 and "Resuming after epoch 1" in out and len(note) == 1
      and "--seed 3 (was 10)" in note[0] and "--epochs 2 (was 1)" in note[0],
      "with --valid-csv, --resume takes the validation file in another order and another --seed, "
      "and says so: " + (note[0] if note else out[-300:]))
code, out = run([TRAIN, "--data", vdata, "--csv", os.path.join(vdata, "train.csv"), "--valid-csv",
                 os.path.join(vdata, "valid.csv"), "--valid-pct", "0.3", "--out",
                 os.path.join(WORK, "run_vcsv_pct")] + common(1))
check(code == 2 and "--valid-pct" in out, "--valid-csv with --valid-pct is a usage error (exit 2)")
code, out = run([TRAIN, "--data", vdata, "--csv", os.path.join(vdata, "train.csv"), "--valid-csv",
                 os.path.join(vdata, "train.csv"), "--out", os.path.join(WORK, "run_vcsv_same")] + common(1))
check(code == 0 and "32 of the 32 validation images" in out and "memorised" in out,
      "a validation file of training images trains, with a warning that says what its scores mean")
# One class on every image: nothing to learn, said before any training.
one = labelled_data("data_one_class", {"labels.csv": ((name, "red_square") for name, _ in rows)})
code, out = run([TRAIN, "--data", one, "--out", os.path.join(WORK, "run_one_class")] + common(1))
check(code == 1 and "nothing to tell apart" in out and "--allow-empty" in out and "epoch" not in out,
      "data with one class on every image is refused before training, saying why")
# A validation column (fastai's ColSplitter): the rows it marks validate, whatever --seed says;
# fridge_eval --split follows it; --resume keeps it.
marked = {name for i, (name, _) in enumerate(rows) if i % 4 == 1}
cdata = labelled_data("data_vcol",
                      {"labels.csv": ((name, labels, "1" if name in marked else "0")
                                      for name, labels in rows)},
                      header=("filename", "labels", "in_valid"))
crun = os.path.join(WORK, "run_vcol")
code, out = run([TRAIN, "--data", cdata, "--valid-col", "in_valid", "--seed", "5", "--out", crun]
                + common(1))
cm = json.load(open(os.path.join(crun, "metrics.json"))) if code == 0 else {}
cp = list(csv.DictReader(open(os.path.join(crun, "predictions.csv")))) if code == 0 else []
check(code == 0 and cm["n_valid"] == 10 and cm["options"].get("valid_col") == "in_valid"
      and "valid_pct" not in cm["options"]
      and {os.path.basename(r["filename"]) for r in cp} == marked,
      "fridge_train --valid-col validates on the rows the column marks")
code, out = run([EVAL, "--model", os.path.join(crun, "model.h5"), "--data", cdata, "--split", "valid",
                 "--out", os.path.join(WORK, "vcol_eval"), "--threads", "1"])
ce = json.load(open(os.path.join(WORK, "vcol_eval", "metrics.json"))) if code == 0 else {}
check(code == 0 and "column 'in_valid'" in out and ce["n"] == 10 and
      abs(ce["at_threshold"]["hamming_accuracy"] - cm["valid"]["hamming_accuracy"]) < 1e-9,
      "fridge_eval --split valid scores the rows of the model's validation column, as trained")
code, out = run([EVAL, "--model", os.path.join(crun, "model.h5"), "--data", cdata, "--split", "valid",
                 "--seed", "3", "--out", os.path.join(WORK, "vcol_eval_seed")])
check(code == 1 and "in_valid" in out, "fridge_eval --split with --seed on a column-split model is refused")
code, out = run([TRAIN, "--out", crun, "--resume", "--epochs", "2", "--no-progress"])
restored = next((l for l in out.splitlines() if l.startswith("Resuming the run in")), "")
check(code == 0 and "--valid-col in_valid" in restored and "--valid-pct" not in restored
      and json.load(open(os.path.join(crun, "metrics.json")))["n_valid"] == 10,
      "--resume keeps the run's validation column: " + (restored or out[-300:]))
code, out = run([TRAIN, "--data", cdata, "--valid-col", "in_valid", "--valid-pct", "0.3", "--out",
                 os.path.join(WORK, "run_vcol_pct")] + common(1))
check(code == 2 and "--valid-pct" in out, "--valid-col with --valid-pct is a usage error (exit 2)")
code, out = run([TRAIN, "--data", cdata, "--valid-col", "is_valid", "--out",
                 os.path.join(WORK, "run_vcol_missing")] + common(1))
check(code == 1 and "no 'is_valid' column" in out, "--valid-col naming a missing column fails, naming it")
code, out = run([TRAIN, "--data", cdata, "--valid-col", "labels", "--out",
                 os.path.join(WORK, "run_vcol_labels")] + common(1))
check(code == 1 and "is the labels column" in out, "--valid-col naming the labels column is refused")
code, out = run([TRAIN, "--out", crun, "--resume", "--epochs", "3", "--valid-pct", "0.2", "--no-progress"])
check(code == 1 and "the --csv and --valid-col of that run" in out,
      "--resume with a random split on a column-split run is refused, naming the run's own split "
      "options")
# A random split reads no validation column: an is_valid column of other values is just data.
wdata = labelled_data("data_isvalid_words",
                      {"labels.csv": ((name, labels, "train" if i % 2 else "holdout")
                                      for i, (name, labels) in enumerate(rows))},
                      header=("filename", "labels", "is_valid"))
code, out = run([TRAIN, "--data", wdata, "--out", os.path.join(WORK, "run_isvalid_words")] + common(1))
check(code == 0 and "32 training and 8 validation images" in out,
      "a random split trains on a labels file whose is_valid column is not boolean")
# With --skip-bad the column split keeps the images that decode; fridge_eval --split follows
# only with --skip-bad, and says how else to score (the column fixes the split: --split all).
bcdata = os.path.join(WORK, "data_vcol_bad")
shutil.copytree(cdata, bcdata, symlinks=False)
bad_marked = sorted(marked)[0]
open(os.path.join(bcdata, "images", bad_marked), "wb").write(b"\xff\xd8\xff\xe0 truncated")
bcrun = os.path.join(WORK, "run_vcol_bad")
code, out = run([TRAIN, "--data", bcdata, "--valid-col", "in_valid", "--skip-bad", "--out", bcrun]
                + common(1))
check(code == 0 and json.load(open(os.path.join(bcrun, "metrics.json")))["n_valid"] == 9,
      "--valid-col --skip-bad validates on the marked images that decode")
code, out = run([EVAL, "--model", os.path.join(bcrun, "model.h5"), "--data", bcdata, "--split", "valid",
                 "--out", os.path.join(WORK, "vcol_bad_eval")])
check(code == 1 and "with --skip-bad" in out and "--split all" in out and "--valid-pct" not in out,
      "fridge_eval --split valid on a column split without --skip-bad is refused, saying what to do")
code, out = run([EVAL, "--model", os.path.join(bcrun, "model.h5"), "--data", bcdata, "--split", "valid",
                 "--skip-bad", "--out", os.path.join(WORK, "vcol_bad_eval")])
check(code == 0 and json.load(open(os.path.join(WORK, "vcol_bad_eval", "metrics.json")))["n"] == 9,
      "fridge_eval --split valid --skip-bad scores the column's 9 decodable validation images")

# ---- outputs: contents --------------------------------------------------------------------------
m = m_run
classes = sorted(kinds)
check(m["classes"] == classes, "metrics.json names the classes in sorted order")
check(m["n_train"] + m["n_valid"] == 40 and m["n_valid"] == 8, "20% of 40 images validate")
check(len(m["history"]) == EPOCHS and len(m["sweep"]) == 21, "metrics.json has the history and the 21-threshold sweep")
check(0.0 <= m["optimal_threshold"]["threshold"] <= 1.0, "metrics.json has the optimal threshold")
pred = list(csv.DictReader(open(os.path.join(run_dir, "predictions.csv"))))
check(len(pred) == 8, "predictions.csv has one row per validation image")
check(list(pred[0].keys()) == ["filename"] + [f"p_{c}" for c in classes] + ["predicted", "true"],
      "predictions.csv columns: file, one probability per class, predicted, true")
truth = dict(rows)
check(all(r["true"] == " ".join(sorted(truth[r["filename"]].split(), key=classes.index)) or
          set(r["true"].split()) == set(truth[r["filename"]].split()) for r in pred),
      "predictions.csv's true labels are the labels file's")
check(all(set(r["predicted"].split()) == {c for c in classes if float(r[f"p_{c}"]) > 0.5} for r in pred),
      "predicted labels are the probabilities above the threshold")
with h5py.File(os.path.join(run_dir, "model.h5"), "r") as f:
    check(f.attrs["architecture"] in ("fastai_resnet18", b"fastai_resnet18"), "model.h5 says what it is")
    check([c.decode() if isinstance(c, bytes) else c for c in f.attrs["class_names"]] == classes, "model.h5 names the classes")
    check(list(f.attrs["input_size"]) == [3, 32, 32], "model.h5 has the input size")
    check(tuple(f["head/8/weight"].shape) == (3, 512), "model.h5 holds the head")
html = open(os.path.join(run_dir, "report.html")).read()
check(html.count("<svg") == 3 and html.count("data:image/jpeg;base64,") >= 8 + 12 and "http" not in html.replace("http-equiv", ""),
      "report.html is self-contained with 3 charts and the image grids")

# ---- fridge_eval: score the same validation rows, then predict ---------------------------------
ev = os.path.join(WORK, "eval")
code, out = run([EVAL, "--model", os.path.join(run_dir, "model.h5"), "--data", data, "--split", "valid",
                 "--out", ev, "--threads", "1"])
check(code == 0, "fridge_eval (score) exits 0")
e = json.load(open(os.path.join(ev, "metrics.json")))
check(e["n"] == 8, "fridge_eval scores the 8 validation images")
check(abs(e["at_threshold"]["hamming_accuracy"] - m["valid"]["hamming_accuracy"]) < 1e-9 and
      abs(e["at_threshold"]["zero_one_accuracy"] - m["valid"]["zero_one_accuracy"]) < 1e-9,
      "fridge_eval reproduces fridge_train's final validation metrics")
pv = os.path.join(WORK, "predict")
# A folder's images in its subfolders too, hidden files and folders left out (get_image_files).
photos = os.path.join(WORK, "photos")
shutil.copytree(os.path.join(data, "images"), photos)
some = sorted(os.listdir(photos))[:3]
nested = os.path.join(photos, "2026", "june")
os.makedirs(nested)
os.makedirs(os.path.join(photos, ".thumbnails"))
for name, to in ((some[0], os.path.join(nested, "1.jpg")),
                 (some[1], os.path.join(photos, ".thumbnails", "2.jpg")),
                 (some[2], os.path.join(photos, ".hidden.jpg"))):
    shutil.copyfile(os.path.join(photos, name), to)
code, out = run([EVAL, "--model", os.path.join(run_dir, "model.h5"), "--predict", photos,
                 os.path.join(photos, "2026"), "--out", pv])  # a subfolder again: each file once
check(code == 0, "fridge_eval --predict exits 0")
pj = json.load(open(os.path.join(pv, "predictions.json")))
check(len(pj["predictions"]) == 41 and
      any(p["file"].endswith("2026/june/1.jpg") for p in pj["predictions"]),
      "every image of the folder and its subfolders is predicted, hidden ones left out")
check(pj.get("cpu_convolutions") == "winograd" and "Winograd 3x3 convolutions" in out,
      "fridge_eval --predict says which CPU convolutions ran, in its log and predictions.json")
pc = list(csv.DictReader(open(os.path.join(pv, "predictions.csv"))))
check(len(pc) == 41 and "true" not in pc[0], "predictions.csv without labels")

# ---- without --data: the built-in demo data, with the demo flags overridden to stay small --------
demo_out = os.path.join(WORK, "demo")
code, out = run([TRAIN, "--out", demo_out, "--demo-images", "24", "--demo-height", "60"] + common(1))
check(code == 0 and "built-in demo data (24 photo-like images of 45x60" in out,
      "fridge_train without --data writes and trains on the demo data")
demo_rows = list(csv.DictReader(open(os.path.join(demo_out, "demo_data", "labels.csv"))))
demo_sizes = {Image.open(os.path.join(demo_out, "demo_data", "images", r["filename"])).size for r in demo_rows}
check(len(demo_rows) == 24 and demo_sizes == {(45, 60)}, "the demo data has 24 images of 45x60")
check(os.path.exists(os.path.join(demo_out, "model.h5")), "the demo run writes model.h5")
code, out = run([TRAIN, "--out", demo_out, "--demo-images", "28", "--demo-height", "60"] + common(1))
demo_rows = list(csv.DictReader(open(os.path.join(demo_out, "demo_data", "labels.csv"))))
check(code == 0 and "writing it again" in out and len(demo_rows) == 28
      and len(os.listdir(os.path.join(demo_out, "demo_data", "images"))) == 28,
      "another --demo-images writes the demo data again instead of reusing the old")
# --weights from a model of other classes: its body, a new head (as fastai on new classes)
code, out = run([TRAIN, "--data", data, "--out", os.path.join(WORK, "from_demo"), "--weights",
                 os.path.join(demo_out, "model.h5")] + common(1))
check(code == 0 and "head initialised: its head predicts can, carton, milk_bottle, water_bottle" in out,
      "fridge_train --weights of a model of other classes loads its body and starts a new head")

# ---- mixed precision: two epochs in bfloat16, float32 files, scored by fridge_eval --------------
mp = os.path.join(WORK, "mixed")
code, out = run([TRAIN, "--data", data, "--out", mp, "--mixed-precision"] + common(2))
check(code == 0 and "bfloat16 mixed precision" in out, "fridge_train --mixed-precision trains and says so")
mm = json.load(open(os.path.join(mp, "metrics.json")))
check(mm["precision"] == "bfloat16 mixed" and m_run["precision"] == "float32",
      "metrics.json says which precision ran")
# On a CPU with bfloat16 instructions oneDNN's bfloat16 kernels compute the convolutions (when
# cudl has oneDNN, CUDL_TEST_ONEDNN from CMake); ONEDNN_MAX_CPU_ISA may hold oneDNN below them.
if os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA"):
    want_conv = ("onednn_bf16", "winograd")
elif os.environ.get("CUDL_TEST_ONEDNN") == "1" and "avx512_bf16" in open("/proc/cpuinfo").read():
    want_conv = ("onednn_bf16",)
else:
    want_conv = ("winograd",)
check(mm["cpu_convolutions"] in want_conv,
      f"metrics.json says which convolutions ran in mixed precision ({mm['cpu_convolutions']})")
check(all(np.isfinite([r["train_loss"] for r in mm["history"]])), "mixed-precision losses are finite")
with h5py.File(os.path.join(mp, "model.h5"), "r") as f:
    check(f["head/8/weight"].dtype == np.float32, "the mixed-precision model is saved in float32")
code, out = run([EVAL, "--model", os.path.join(mp, "model.h5"), "--data", data, "--split", "valid",
                 "--out", os.path.join(WORK, "mixed_eval"), "--threads", "1"])
check(code == 0, "fridge_eval scores the mixed-precision model")
code, out = run([EVAL, "--model", os.path.join(mp, "model.h5"), "--data", data, "--split", "valid",
                 "--out", os.path.join(WORK, "mixed_eval_bf16"), "--threads", "1", "--mixed-precision"])
me16 = json.load(open(os.path.join(WORK, "mixed_eval_bf16", "metrics.json")))
me32 = json.load(open(os.path.join(WORK, "mixed_eval", "metrics.json")))
check(code == 0 and "bfloat16 mixed precision" in out and me16["precision"] == "bfloat16 mixed"
      and me32["precision"] == "float32", "fridge_eval --mixed-precision scores in bfloat16 and says so")
check(abs(me16["loss"] - me32["loss"]) < 0.05 * max(me32["loss"], 0.1),
      f"bfloat16 scoring gives about the float32 loss ({me16['loss']:.4f} vs {me32['loss']:.4f})")

# ---- channels-last: the row-major run's numbers, and the layout recorded ------------------------
layouts, out_layout = {}, {}
for name, extra in (("row_major", []), ("channels_last", ["--channels-last"])):
    code, out = run([TRAIN, "--data", data, "--out", os.path.join(WORK, name)] + extra + common(2))
    check(code == 0 and (not extra or "channels-last" in out),
          f"fridge_train {' '.join(extra) or 'row-major'} trains (and says so)")
    layouts[name] = json.load(open(os.path.join(WORK, name, "metrics.json")))
    out_layout[name] = out
check(layouts["channels_last"]["memory_format"] == "channels_last"
      and layouts["row_major"]["memory_format"] == "contiguous", "metrics.json says which memory format ran")
hist = {k: [(r["train_loss"], r["valid_loss"]) for r in v["history"]] for k, v in layouts.items()}
check(np.allclose(hist["channels_last"], hist["row_major"], rtol=1e-6, atol=0),
      f"channels-last training has the row-major losses ({hist['channels_last']} vs {hist['row_major']})")
code, out = run([EVAL, "--model", os.path.join(WORK, "channels_last", "model.h5"), "--data", data,
                 "--out", os.path.join(WORK, "cl_eval"), "--threads", "1", "--channels-last"])
cle = json.load(open(os.path.join(WORK, "cl_eval", "metrics.json")))
code2, _ = run([EVAL, "--model", os.path.join(WORK, "channels_last", "model.h5"), "--data", data,
                "--out", os.path.join(WORK, "rm_eval"), "--threads", "1"])
rme = json.load(open(os.path.join(WORK, "rm_eval", "metrics.json")))
check(code == 0 and code2 == 0 and cle["memory_format"] == "channels_last"
      and abs(cle["loss"] - rme["loss"]) <= 1e-6 * rme["loss"],
      "fridge_eval --channels-last scores as the row-major evaluation does")

# ---- Winograd (the CPU default) against --no-winograd (direct kernels), and the choice recorded --
check(layouts["row_major"]["cpu_convolutions"] == "winograd" and "Winograd 3x3 convolutions" in out_layout["row_major"],
      "fridge_train uses Winograd's convolutions on the CPU by default and says so")
dr = os.path.join(WORK, "direct")
code, out = run([TRAIN, "--data", data, "--out", dr, "--no-winograd"] + common(2))
check(code == 0 and "direct convolutions" in out and "Winograd" not in out,
      "fridge_train --no-winograd trains on the direct kernels and says so")
drm = json.load(open(os.path.join(dr, "metrics.json")))
check(drm["cpu_convolutions"] == "direct", "metrics.json says which CPU convolutions ran")
# This tiny run (batch 4, lr 1e-3 from scratch) amplifies any rounding difference: the direct
# kernels on 1, 2 and 3 threads gave first-epoch losses of 0.98, 1.40 and 1.12. So the losses are
# only checked to be finite here; Winograd's gradients are checked against PyTorch's in
# ResNetParity.NotebookModelGradientsAndOneAdamWStepWithWinograd, its forward just below.
check(all(np.isfinite([r["train_loss"] for r in drm["history"]])), "direct training losses are finite")
code, out = run([EVAL, "--model", os.path.join(WORK, "row_major", "model.h5"), "--data", data,
                 "--out", os.path.join(WORK, "direct_eval"), "--threads", "1", "--no-winograd"])
dre = json.load(open(os.path.join(WORK, "direct_eval", "metrics.json")))
check(code == 0 and "direct convolutions" in out and dre["cpu_convolutions"] == "direct"
      and rme["cpu_convolutions"] == "winograd" and abs(dre["loss"] - rme["loss"]) <= 1e-4 * rme["loss"],
      f"fridge_eval --no-winograd scores as the (Winograd) default does ({dre['loss']} vs {rme['loss']})")
# single-label data (one label per image: cross-entropy, argmax predictions), in mixed precision
single = os.path.join(WORK, "single_data")
shutil.copytree(os.path.join(data, "images"), os.path.join(single, "images"))
with open(os.path.join(single, "labels.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["filename", "labels"])
    w.writerows((name, labels.split()[0]) for name, labels in rows)
code, out = run([TRAIN, "--data", single, "--out", os.path.join(WORK, "single"), "--mixed-precision"]
                + common(1))
check(code == 0 and "cross_entropy" in out, "single-label data trains with cross-entropy in mixed precision")
check("the most probable class is predicted" in out and "Optimal threshold" not in out
      and "Accuracy vs threshold" not in open(os.path.join(WORK, "single", "report.html")).read(),
      "a single-label run reports its accuracy without thresholds (log and report)")
# ... and fridge_eval scores its validation images as training did: softmax probabilities in
# predictions.csv, the most probable class predicted, the same metrics
code, out = run([EVAL, "--model", os.path.join(WORK, "single", "model.h5"), "--data", single,
                 "--split", "valid", "--mixed-precision", "--threads", "1",
                 "--out", os.path.join(WORK, "single_eval")])
st = json.load(open(os.path.join(WORK, "single", "metrics.json")))
se = json.load(open(os.path.join(WORK, "single_eval", "metrics.json")))
check(code == 0 and all(abs(st["valid"][k] - se["at_threshold"][k]) < 1e-9
                        for k in ("hamming_accuracy", "zero_one_accuracy"))
      and abs(st["mean_average_precision"] - se["mean_average_precision"]) < 1e-9,
      "a single-label model's metrics are the same in fridge_train and fridge_eval")
sp = list(csv.DictReader(open(os.path.join(WORK, "single_eval", "predictions.csv"))))
pcols = [k for k in sp[0] if k.startswith("p_")]
check(all(abs(sum(float(r[k]) for k in pcols) - 1) < 1e-4 and len(r["predicted"].split()) == 1
          and r["predicted"] == max(pcols, key=lambda k: float(r[k]))[2:] for r in sp),
      "single-label predictions.csv: softmax probabilities and the most probable class")
# The task is the model's: the multi-label model scores rows that happen to hold one label each;
# the single-label model refuses a row with two, naming it.
code, out = run([EVAL, "--model", os.path.join(run_dir, "model.h5"), "--data", single,
                 "--out", os.path.join(WORK, "multi_on_single"), "--threads", "1"])
check(code == 0 and "hamming" in out, "fridge_eval scores a multi-label model on one-label rows")
two = next(i for i, (_, labels) in enumerate(rows) if len(labels.split()) > 1)
code, out = run([EVAL, "--model", os.path.join(WORK, "single", "model.h5"), "--data", data,
                 "--out", os.path.join(WORK, "single_on_multi"), "--threads", "1"])
model_line = next((l for l in out.splitlines() if l.startswith("Model: ")), "")
check(code == 1 and "single-label model" in out and f"labels.csv:{two + 2}" in out
      and os.path.join(WORK, "single", "model.h5") in model_line and "single-label" in model_line,
      "fridge_eval refuses two labels for a single-label model, naming the line after the model")
# Images with none of the classes: bad rows unless --allow-empty (multi-label negatives)
empty_csv = os.path.join(WORK, "with_empty.csv")
with open(empty_csv, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["filename", "labels"])
    w.writerows((name, "" if i < 3 else labels) for i, (name, labels) in enumerate(rows))
code, out = run([TRAIN, "--csv", empty_csv, "--images", os.path.join(data, "images"),
                 "--out", os.path.join(WORK, "empty_refused")] + common(1))
check(code == 1 and "row without labels" in out, "a row without labels is refused by default")
code, out = run([TRAIN, "--csv", empty_csv, "--images", os.path.join(data, "images"),
                 "--out", os.path.join(WORK, "empty_allowed"), "--allow-empty"] + common(1))
check(code == 0 and "multi-label" in out, "--allow-empty trains with images of none of the classes")
# --csv alone: the dataset is the file's folder (no demo data, no demo defaults)
code, out = run([TRAIN, "--csv", os.path.join(single, "labels.csv"), "--out", os.path.join(WORK, "csv_only")]
                + common(1))
check(code == 0 and f"Data: {os.path.join(single, 'labels.csv')}" in out and "demo" not in out
      and not os.path.exists(os.path.join(WORK, "csv_only", "demo_data")),
      "fridge_train --csv without --data trains on the images next to the file")
# fridge_eval --split follows the model's own split (another --seed and --valid-pct here), and
# refuses data whose split would give other validation files
split_run = os.path.join(WORK, "split_run")
code, out = run([TRAIN, "--data", single, "--out", split_run, "--seed", "3", "--valid-pct", "0.3"]
                + common(1))
code2, out2 = run([EVAL, "--model", os.path.join(split_run, "model.h5"), "--data", single,
                   "--split", "valid", "--out", os.path.join(WORK, "split_eval"), "--threads", "1"])
trained_valid = sorted(r["filename"] for r in csv.DictReader(open(os.path.join(split_run, "predictions.csv"))))
scored = sorted(r["filename"] for r in csv.DictReader(open(os.path.join(WORK, "split_eval", "predictions.csv"))))
check(code == 0 and code2 == 0 and "seed 3 as the model was trained" in out2 and scored == trained_valid
      and len(scored) == 12, "fridge_eval --split valid scores the model's own validation images")
shifted = os.path.join(WORK, "shifted_data")
shutil.copytree(single, shifted)
with open(os.path.join(shifted, "labels.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["filename", "labels"])
    w.writerows((name, labels.split()[0]) for name, labels in rows[1:] + rows[:1])
code, out = run([EVAL, "--model", os.path.join(split_run, "model.h5"), "--data", shifted,
                 "--split", "valid", "--out", os.path.join(WORK, "shifted_eval"), "--threads", "1"])
check(code == 1 and "not the 12 that" in out, "fridge_eval --split refuses data that splits differently")
code, out = run([EVAL, "--model", os.path.join(split_run, "model.h5"), "--data", shifted, "--split",
                 "valid", "--seed", "3", "--out", os.path.join(WORK, "shifted_eval"), "--threads", "1"])
check(code == 1 and "not the 12 that" in out, "... also when --seed repeats the model's own seed")
code, out = run([EVAL, "--model", os.path.join(split_run, "model.h5"), "--data", shifted, "--split",
                 "valid", "--seed", "4", "--out", os.path.join(WORK, "shifted_eval"), "--threads", "1"])
check(code == 0 and "seed 4)" in out, "... unless another split is asked for on purpose (--seed)")
# A model written before the split was recorded: scored on the default split, with a warning.
old_model = os.path.join(WORK, "old_model.h5")
shutil.copy(os.path.join(split_run, "model.h5"), old_model)
with h5py.File(old_model, "a") as f:
    del f.attrs["split"]
code, out = run([EVAL, "--model", old_model, "--data", single, "--split", "valid",
                 "--out", os.path.join(WORK, "old_eval"), "--threads", "1"])
check(code == 0 and "does not record the split" in out and "valid-pct 0.2, seed 10" in out,
      "fridge_eval --split on a model without a recorded split warns that it assumes the defaults")
code, out = run([EVAL, "--model", old_model, "--data", single, "--split", "valid", "--seed", "3",
                 "--valid-pct", "0.3", "--out", os.path.join(WORK, "old_eval"), "--threads", "1"])
check(code == 0 and "does not record the split" not in out and "seed 3" in out,
      "... and not when --seed and --valid-pct give the split")
code, out = run([TRAIN, "--images", os.path.join(single, "images"), "--out", os.path.join(WORK, "images_only")])
check(code == 2 and "--images" in out, "fridge_train --images without labels is a usage error (exit 2)")
for opt in ("--lr", "--wd", "--valid-pct", "--threshold"):
    code, out = run([TRAIN, opt, "nan", "--out", os.path.join(WORK, "nan_option")])
    check(code == 2 and "finite" in out and not os.path.exists(os.path.join(WORK, "nan_option")),
          f"fridge_train {opt} nan is a usage error (exit 2) and writes nothing")
for args in (["--device", "gpu"], ["--out", ""]):
    code, out = run([TRAIN] + args)
    check(code == 2 and args[0] in out, f"fridge_train {' '.join(args)!r} is a usage error (exit 2)")
not_image = os.path.join(WORK, "not_an_image.jpg")
open(not_image, "w").write("text")
code, out = run([EVAL, "--model", os.path.join(run_dir, "model.h5"), "--predict", not_image,
                 "--out", os.path.join(WORK, "not_image_eval")])
check(code == 1 and "not a JPEG or PNG" in out and "line 0" not in out,
      "fridge_eval --predict names an undecodable image without a labels-file line")
code, out = run([EVAL, "--model", os.path.join(run_dir, "model.h5"), "--predict",
                 os.path.join(WORK, "no_such_photo.jpg")])
check(code == 2 and "no_such_photo.jpg" in out, "fridge_eval --predict on a missing path is a usage error (exit 2)")
code, out = run([EVAL, "--model", os.path.join(run_dir, "model.h5"), "--data", data, "--threshold", "nan"])
check(code == 2 and "finite" in out, "fridge_eval --threshold nan is a usage error (exit 2)")
code, out = run([TRAIN, "--help"])
check(code == 0 and "Demo defaults (without --data or --csv, unless given): --size" in out, "--help gives the demo defaults")

# ---- bad invocations ----------------------------------------------------------------------------
code, out = run([TRAIN, "--bs", "0"])
check(code == 2 and "--bs" in out, "fridge_train --bs 0 is a usage error (exit 2)")
a_file = os.path.join(WORK, "a_file")
open(a_file, "w").write("not a folder")
for prog in (TRAIN, EVAL):
    code, out = run([prog, "--out", a_file, "--model", os.path.join(run_dir, "model.h5")]
                    if prog == EVAL else [prog, "--out", a_file])
    check(code == 2 and "--out" in out and "is a file" in out,
          f"{os.path.basename(prog)} --out naming a file is a usage error (exit 2)")
code, out = run([TRAIN, "--out", os.path.join(a_file, "run")])
check(code == 2 and "cannot be a folder in it" in out, "fridge_train --out inside a file is a usage error")
default_taken = os.path.join(WORK, "default_out_taken")
os.makedirs(default_taken)
open(os.path.join(default_taken, "fridge_out"), "w").write("not a folder")
code, out = run([TRAIN, "--demo-images", "24"], cwd=default_taken)
check(code == 2 and "'fridge_out' is a file" in out and os.listdir(default_taken) == ["fridge_out"],
      "fridge_train's default --out is checked too: a file of that name is a usage error")
code, out = run([TRAIN, "--data", os.path.join(WORK, "missing")])
check(code == 2, "fridge_train --data on a missing folder is a usage error (exit 2)")
code, out = run([EVAL, "--model", os.path.join(run_dir, "model.h5")])
check(code == 2, "fridge_eval without data or --predict is a usage error (exit 2)")
broken = os.path.join(WORK, "broken.h5")
open(broken, "wb").write(b"not an hdf5 file")
code, out = run([EVAL, "--model", broken, "--predict", os.path.join(data, "images")])
check(code == 1 and "broken.h5" in out, "fridge_eval with a corrupt model fails (exit 1) naming the file")
check(re.search(r"\.(cpp|cu|h):[0-9]+", out) is None, "the error message carries no source location")
bad = os.path.join(WORK, "bad_data")
shutil.copytree(data, bad)
open(os.path.join(bad, "images", "5.jpg"), "wb").write(b"\xff\xd8\xff\xe0 truncated")
code, out = run([TRAIN, "--data", bad, "--out", os.path.join(WORK, "bad_out")] + COMMON)
check(code == 1 and "5.jpg" in out and "hint: --skip-bad skips" in out,
      "a corrupt image stops fridge_train (exit 1) naming the file and pointing to --skip-bad")
code, out = run([TRAIN, "--data", bad, "--out", os.path.join(WORK, "bad_out"), "--skip-bad"] + common(1))
check(code == 0 and "skipped" in out, "--skip-bad trains without the corrupt image and says so")
# A disk that fills during a checkpoint (a file size limit stands in for it): exit 1 with the
# reason and a hint, not a crash at exit, and no temporary file left behind.
def small_files():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20 << 20, 20 << 20))
full = os.path.join(WORK, "full_disk")
code, out = run([TRAIN, "--data", data, "--out", full] + common(1), preexec_fn=small_files)
check(code == 1 and "checkpoint.h5" in out and "File too large" in out and "hint: a file could "
      "not be written" in out and not any(".tmp-" in f for f in os.listdir(full)),
      f"a write that fails for lack of space ends fridge_train with exit 1, a hint and no "
      f"temporary file (exit {code})")
# fridge_eval --split on that model: with --skip-bad the split is made over the images that
# decode, as in training; without it the split over every row is not the model's, and is refused.
code, out = run([EVAL, "--model", os.path.join(WORK, "bad_out", "model.h5"), "--data", bad, "--split",
                 "valid", "--skip-bad", "--out", os.path.join(WORK, "bad_eval"), "--threads", "1"])
bad_trained = sorted(r["filename"] for r in csv.DictReader(open(os.path.join(WORK, "bad_out", "predictions.csv"))))
bad_scored = (sorted(r["filename"] for r in csv.DictReader(open(os.path.join(WORK, "bad_eval", "predictions.csv"))))
              if code == 0 else [])
check(code == 0 and json.load(open(os.path.join(WORK, "bad_eval", "metrics.json")))["skipped"] == 1
      and bad_scored == bad_trained and len(bad_scored) > 0,
      "fridge_eval --split valid --skip-bad scores the model's validation images, the corrupt one skipped")
code, out = run([EVAL, "--model", os.path.join(WORK, "bad_out", "model.h5"), "--data", bad, "--split",
                 "valid", "--out", os.path.join(WORK, "bad_eval2"), "--threads", "1"])
check(code == 1 and "with --skip-bad" in out,
      "fridge_eval --split valid without --skip-bad refuses the split that differs from the model's")

# ---- CUDA: train, score, predict and resume on the GPU, when one answers -------------------------
# With CUDL_REQUIRE_CUDA=1 (scripts/gpu_check.sh) a GPU must answer. Training on the GPU is not
# compared number for number with the CPU's (TF32 and cuDNN's algorithms round otherwise, and
# this tiny run amplifies rounding); scoring a model is, in float32 (fridge_eval's default).
gpu = os.path.join(WORK, "gpu")
code, out = run([TRAIN, "--data", data, "--out", gpu, "--device", "cuda"] + common(2))
if code != 0 and "CUDA is not available" in out and os.environ.get("CUDL_REQUIRE_CUDA") != "1":
    print("skip the CUDA section: " + out.strip().splitlines()[-1])
else:
    check(code == 0, "fridge_train --device cuda trains" + ("" if code == 0 else ": " + out[-500:]))
    gm = json.load(open(os.path.join(gpu, "metrics.json"))) if code == 0 else {"history": []}
    check(gm.get("device") == "cuda:0" and "cpu_convolutions" not in gm and gm.get("train_step") == "cuda graph",
          f"metrics.json: trained on cuda:0 by CUDA-graph steps ({gm.get('device')}, {gm.get('train_step')})")
    check(len(gm["history"]) == 2 and all(np.isfinite([r["train_loss"] for r in gm["history"]] +
                                                      [r["valid_loss"] for r in gm["history"]])),
          "the GPU run's losses are finite")
    code, out = run([EVAL, "--model", os.path.join(WORK, "row_major", "model.h5"), "--data", data,
                     "--out", os.path.join(WORK, "gpu_eval"), "--device", "cuda"])
    ge = json.load(open(os.path.join(WORK, "gpu_eval", "metrics.json"))) if code == 0 else {}
    check(code == 0 and abs(ge.get("loss", float("inf")) - dre["loss"]) <= 1e-3 * dre["loss"],
          f"fridge_eval --device cuda scores the CPU-trained model as the CPU's direct kernels do ({ge.get('loss')} vs {dre['loss']})")
    code, out = run([EVAL, "--model", os.path.join(run_dir, "model.h5"), "--predict",
                     os.path.join(data, "images"), "--out", os.path.join(WORK, "gpu_predict"), "--device", "cuda"])
    gp = json.load(open(os.path.join(WORK, "gpu_predict", "predictions.json"))) if code == 0 else {"predictions": []}
    cpu_p = {r["file"]: r["probabilities"] for r in pj["predictions"]}
    check(code == 0 and len(gp["predictions"]) == 40 and "cpu_convolutions" not in gp
          and all(abs(r["probabilities"][c] - cpu_p[r["file"]][c]) < 1e-3 for r in gp["predictions"] for c in classes),
          "fridge_eval --predict --device cuda gives the CPU's probabilities")
    code, out = run([TRAIN, "--data", data, "--out", os.path.join(WORK, "gpu_mixed_cl"), "--device", "cuda",
                     "--mixed-precision", "--channels-last"] + common(1))
    check(code == 0 and "bfloat16 mixed precision" in out and "channels-last" in out,
          "fridge_train --device cuda --mixed-precision --channels-last trains" + ("" if code == 0 else ": " + out[-500:]))
    gpu_resume = copy_of(run_dir, "run_gpu_resume")
    code, out = run([TRAIN, "--data", data, "--out", gpu_resume, "--resume", "--device", "cuda"] + common(EPOCHS + 1))
    note = [l for l in out.splitlines() if l.startswith("Note: resuming with settings")]
    check(code == 0 and f"Resuming after epoch {EPOCHS}" in out and len(note) == 1
          and '--device "cuda:0" (was "cpu")' in note[0],
          "a CPU checkpoint resumes on the GPU, saying so: " + (note[0] if note else out[-300:]))

print(f"\n{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
