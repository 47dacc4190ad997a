"""Renders report.html in a real browser (Debian's headless Chromium) to a PNG and checks the
picture: the page rendered at full height, the charts drew their coloured lines and the image
grids show photos (many distinct colours), not a blank or broken page.

usage: report_screenshot.py REPORT_HTML OUTPUT_PNG
"""
import os
import shutil
import subprocess
import sys
import tempfile

from PIL import Image

html, png = sys.argv[1], sys.argv[2]
browser = shutil.which("chromium") or shutil.which("chromium-browser")
if not browser:
    # Exit 77: ctest reports the test as skipped, with this reason (scripts/setup.sh installs
    # Chromium, so CI runs it; a machine without it, such as an offline GPU machine, skips it).
    print("skipped: chromium is not installed (Debian package chromium; scripts/setup.sh installs it)")
    sys.exit(77)
if os.path.exists(png):
    os.remove(png)
with tempfile.TemporaryDirectory() as profile:
    r = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                        f"--user-data-dir={profile}", "--window-size=1200,2600",
                        f"--screenshot={png}", "file://" + os.path.abspath(html)],
                       capture_output=True, text=True, timeout=240)
if r.returncode != 0 or not os.path.exists(png):
    sys.exit(f"chromium failed ({r.returncode}): {r.stderr[-2000:]}")

img = Image.open(png).convert("RGB")
w, h = img.size
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


check((w, h) == (1200, 2600), f"screenshot is 1200x2600 (got {w}x{h})")
def rgb_pixels(image):  # (r, g, b) tuples, without Image.getdata (deprecated in Pillow 12)
    return list(zip(*[iter(image.tobytes())] * 3))


pixels = rgb_pixels(img)
non_white = sum(1 for p in pixels if p != (255, 255, 255) and p != (250, 250, 250))
check(non_white > 0.15 * len(pixels), f"the page is not blank ({non_white / len(pixels):.0%} non-background)")
# Chart lines: the series colours (#1f77b4 blue, #ff7f0e orange, #2ca02c green) are drawn.
def near(p, c, tol=30):
    return all(abs(a - b) <= tol for a, b in zip(p, c))
top = img.crop((0, 0, w, 1200))
top_pixels = rgb_pixels(top)
for name, colour in [("blue", (31, 119, 180)), ("orange", (255, 127, 14)), ("green", (44, 160, 44))]:
    n = sum(1 for p in top_pixels if near(p, colour))
    check(n > 200, f"chart lines in {name} are visible ({n} pixels)")
# Photos in the grids: lots of distinct colours below the charts.
grid = img.crop((0, 1200, w, h)).quantize(colors=256, method=Image.Quantize.MEDIANCUT)
used = len([c for c in grid.getcolors(1 << 16) or [] if c[0] > 20])
check(used > 64, f"the image grids show pictures ({used} colours in use)")
print(f"screenshot: {png} ({w}x{h})")
sys.exit(1 if failures else 0)
