"""Reference data for the data pipeline tests (tests/data/), computed by NumPy, PyTorch and PIL:

split/   NumPy legacy RandomState: permutations for several seeds and sizes (integer and array
         seeds), bounded integers on both sides of 2**32 (random_interval's 32- and 64-bit
         paths) and random_sample, and the DataLoader's epoch orders.
resize/  RECIPE.md's resize + centre crop in PyTorch on float input (fastai v1's rule: area
         pre-pass when shrinking more than 2x, then interpolate(bilinear, align_corners=True)),
         for float images in [0, 1) and for byte-valued images in [0, 255].
decode/  JPEG and PNG files written by PIL with known content, and PIL's decoding of them
         (Image.open(...).convert("RGB")), reduced-size (draft) decoding, EXIF orientations
         (ImageOps.exif_transpose).
"""
import os
import struct
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from common import out_dir, saver

torch.set_num_threads(1)

# ---- split ---------------------------------------------------------------------------------------
save = saver("split")
for seed in [0, 1, 10, 42, 123456789, 2**32 - 1]:
    for n in [1, 2, 3, 10, 128, 1000, 65537]:
        np.random.seed(seed)
        save(f"perm_{seed}_{n}", np.random.permutation(n).astype(np.int64))
np.random.seed([1, 2, 3])
save("perm_array_1_2_3_100", np.random.permutation(100).astype(np.int64))
# Bounded integers: randint(0, high) draws random_interval(high - 1) with the masked method.
bounds = [1, 2, 7, 1000, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**40 + 12345, 2**62 + 3]
for seed in [0, 10]:
    for high in bounds:
        np.random.seed(seed)
        save(f"randint_{seed}_{high}", np.random.randint(0, high, size=50, dtype=np.int64))
    np.random.seed(seed)
    save(f"random_sample_{seed}", np.random.random_sample(20))
# The DataLoader's epoch order: RandomState([seed & 0xffffffff, seed >> 32, epoch]).permutation(n).
for seed in [7, 2**40 + 5]:
    for epoch in [0, 1, 2]:
        rs = np.random.RandomState([seed & 0xFFFFFFFF, seed >> 32, epoch])
        save(f"loader_order_{seed}_{epoch}", rs.permutation(37).astype(np.int64))

# ---- resize ---------------------------------------------------------------------------------------
save = saver("resize")


def recipe(x, size):
    """fastai v1 transform(size) without augmentation, on a (3, H, W) float tensor."""
    H, W = x.shape[1:]
    ratio = min(H / size, W / size)
    h, w = int(round(H / ratio)), int(round(W / ratio))
    d = min(H / h, W / w) / 2
    if d > 1:
        x = F.interpolate(x[None], scale_factor=1 / d, mode="area")[0]
    y = F.interpolate(x[None], size=(h, w), mode="bilinear", align_corners=True)[0]
    top, left = int((h - size + 1) * 0.5), int((w - size + 1) * 0.5)
    return y[:, top:top + size, left:left + size], (h, w), tuple(x.shape[1:])


resize_cases = [(666, 499, 300), (499, 666, 300), (300, 300, 300), (301, 299, 300),
                (120, 90, 300), (1000, 700, 300), (1200, 1600, 100), (37, 53, 8), (5, 7, 1),
                (480, 640, 64)]
g = torch.Generator().manual_seed(0)
for k, (H, W, S) in enumerate(resize_cases):
    x = torch.rand(3, H, W, generator=g)
    y, (h, w), pooled = recipe(x, S)
    save(f"float_{k}_in", x.permute(1, 2, 0))   # HWC
    save(f"float_{k}_out", y.permute(1, 2, 0))
    xb = torch.randint(0, 256, (3, H, W), generator=g).float()
    yb, _, _ = recipe(xb, S)
    save(f"byte_{k}_in", xb.permute(1, 2, 0).to(torch.uint8))
    save(f"byte_{k}_out", yb.permute(1, 2, 0))
    save(f"sizes_{k}", np.array([h, w, pooled[0], pooled[1]], dtype=np.int64))

# ---- decode ---------------------------------------------------------------------------------------
d = out_dir("decode")
save = saver("decode")


def content(h, w, seed):
    """Photo-like test content: gradients, a few shapes and noise."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([255 * x / max(w - 1, 1), 255 * y / max(h - 1, 1),
                    127 + 120 * np.sin((x + 2 * y) / 7.0)], -1)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(3, max(h, w) / 3)
        img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 10, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def png16(path, rgb16):
    """A 16-bit RGB PNG (PIL cannot write one), with zlib and the chunk layout of the spec."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[i].astype(">u2").tobytes() for i in range(h))

    def chunk(t, data):
        return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


files = {}
rgb = Image.fromarray(content(47, 61, 1))
rgb.save(os.path.join(d, "rgb_q90_420.jpg"), quality=90)
rgb.save(os.path.join(d, "rgb_q95_444.jpg"), quality=95, subsampling=0)
rgb.save(os.path.join(d, "rgb_q85_422.jpg"), quality=85, subsampling=1)
rgb.save(os.path.join(d, "progressive.jpg"), quality=90, progressive=True)
rgb.convert("L").save(os.path.join(d, "grey.jpg"), quality=90)
rgb.convert("CMYK").save(os.path.join(d, "cmyk.jpg"), quality=95)
Image.fromarray(content(17, 33, 2)).save(os.path.join(d, "odd_17x33.jpg"), quality=75)
big = Image.fromarray(content(240, 320, 3))
big.save(os.path.join(d, "big_320x240.jpg"), quality=90)
# PNG flavours.
rgb.save(os.path.join(d, "rgb.png"))
rgba = rgb.copy()
rgba.putalpha(Image.fromarray((np.arange(47 * 61).reshape(47, 61) % 256).astype(np.uint8)))
rgba.save(os.path.join(d, "rgba.png"))
rgb.convert("L").save(os.path.join(d, "grey.png"))
rgb.convert("LA").save(os.path.join(d, "grey_alpha.png"))
pal = rgb.quantize(colors=37)
pal.save(os.path.join(d, "palette.png"))
pal.save(os.path.join(d, "palette_trns.png"), transparency=3)
rgb.convert("1").save(os.path.join(d, "bilevel.png"))
g16 = (np.arange(47 * 61, dtype=np.uint32).reshape(47, 61) * 21 % 65536).astype(np.uint16)
Image.fromarray(g16, "I;16").save(os.path.join(d, "grey16.png"))
rgb16 = (content(47, 61, 4).astype(np.uint16) * 257 + np.arange(3, dtype=np.uint16) * 50)
png16(os.path.join(d, "rgb16.png"), rgb16)

for name in ["rgb_q90_420.jpg", "rgb_q95_444.jpg", "rgb_q85_422.jpg", "progressive.jpg", "grey.jpg",
             "cmyk.jpg", "odd_17x33.jpg", "big_320x240.jpg", "rgb.png", "rgba.png", "grey.png",
             "grey_alpha.png", "palette.png", "palette_trns.png", "bilevel.png", "rgb16.png"]:
    im = Image.open(os.path.join(d, name))
    save(name.replace(".", "_"), np.asarray(im.convert("RGB")))
# 16-bit grey: PIL's convert("RGB") clips I;16 values to 255, we keep the high byte (as PIL does
# for 16-bit RGB), so the expected value is computed here.
save("grey16_png", np.repeat((g16 >> 8).astype(np.uint8)[:, :, None], 3, axis=2))
save("rgb16_png_expected", (rgb16 >> 8).astype(np.uint8))
assert (np.asarray(Image.open(os.path.join(d, "rgb16.png")).convert("RGB")) ==
        (rgb16 >> 8).astype(np.uint8)).all(), "PIL reads 16-bit RGB as the high byte"

# Reduced-size decoding: PIL's draft() picks the libjpeg scale 1/s.
for s in [2, 4, 8]:
    im = Image.open(os.path.join(d, "big_320x240.jpg"))
    im.draft("RGB", (320 // s, 240 // s))
    save(f"big_scale_1_{s}", np.asarray(im.convert("RGB")))

# EXIF orientations.
small = Image.fromarray(content(24, 32, 5))
for o in range(1, 9):
    exif = Image.Exif()
    exif[0x0112] = o
    path = os.path.join(d, f"exif_{o}.jpg")
    small.save(path, quality=95, exif=exif.tobytes())
    im = Image.open(path)
    save(f"exif_{o}_raw", np.asarray(im.convert("RGB")))
    save(f"exif_{o}_upright", np.asarray(ImageOps.exif_transpose(im).convert("RGB")))
print("data reference written")
