#!/usr/bin/env bash
# Downloads torchvision's ImageNet ResNet-18 weights (resnet18-f37072fd.pth), verifies them and
# converts them to cudl's HDF5 weights file. Needs internet access, curl, sha256sum and a built
# weights_import (bash scripts/build.sh). See weights/README.md.
#
# usage: weights/fetch_resnet18.sh [OUTPUT_DIR]        (default: weights/)
# environment: WEIGHTS_IMPORT   path of the tool (default: build/tools/weights_import)
#              RESNET18_SHA256  the full SHA-256 to insist on (default: only the 8-digit prefix
#                               published in the file name is checked)
#              RESNET18_URL     where to download from (default: torchvision's URL)
set -euo pipefail
cd "$(dirname "$0")/.."

url=${RESNET18_URL:-https://download.pytorch.org/models/resnet18-f37072fd.pth}
prefix=f37072fd  # torch.hub convention: the first 8 hex digits of the file's SHA-256
dest=${1:-weights}
tool=${WEIGHTS_IMPORT:-build/tools/weights_import}
pth="$dest/resnet18-f37072fd.pth"
out="$dest/resnet18_imagenet.h5"

if [ ! -x "$tool" ]; then
  echo "fetch_resnet18: $tool not found; build cudl first (bash scripts/build.sh)" >&2
  exit 1
fi
mkdir -p "$dest"

if [ ! -f "$pth" ]; then
  echo "fetch_resnet18: downloading $url"
  # Into a .part file first, so an interrupted download is never taken for the real file.
  trap 'rm -f "$pth.part"' EXIT
  curl -fL --retry 3 -o "$pth.part" "$url"
  mv "$pth.part" "$pth"
  trap - EXIT
fi

sum=$(sha256sum "$pth" | cut -d' ' -f1)
if [ "${sum:0:8}" != "$prefix" ]; then
  echo "fetch_resnet18: $pth has SHA-256 $sum, which does not start with $prefix:" \
       "not the published file (corrupt or replaced download); deleting it" >&2
  rm -f "$pth"
  exit 1
fi
if [ -n "${RESNET18_SHA256:-}" ] && [ "$sum" != "$RESNET18_SHA256" ]; then
  echo "fetch_resnet18: $pth has SHA-256 $sum, expected $RESNET18_SHA256" >&2
  exit 1
fi
echo "fetch_resnet18: SHA-256 $sum (published prefix $prefix matches)"

"$tool" "$pth" --arch resnet18 -o "$out"
echo "fetch_resnet18: done: $out"
