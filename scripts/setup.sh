#!/usr/bin/env bash
# Installs everything cudl needs to build and test on Debian 12 (run as root; uses sudo
# otherwise). The CUDA toolkit (with cuDNN and cuBLAS) is optional and not installed here:
# when /usr/local/cuda/bin/nvcc exists, the build compiles the CUDA backend too.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libopenblas-dev libgtest-dev nlohmann-json3-dev libcli11-dev
  # OpenBLAS on OpenMP, the one cudl links (CMakeLists.txt): with the pthread build its own
  # thread pool competes with cudl's OpenMP threads (ResNet-18's im2col convolutions ran
  # 1.6-3.2x slower with it on 2 cores); this one shares OpenMP's pool.
  libopenblas-openmp-dev
  # oneDNN (the library PyTorch runs its CPU convolutions on) for float32 convolutions:
  # ResNet-18's convolutions at 16 x 300x300, 2 threads, forward + backward: 5.1 s on oneDNN
  # against 5.9 s on im2col + OpenBLAS (bench/conv.sh); 64-channel layers 1.6x faster forward.
  libdnnl-dev
  libhdf5-dev hdf5-tools zlib1g-dev libjpeg62-turbo-dev libpng-dev libzip-dev
  python3-torch python3-torchvision python3-h5py python3-numpy python3-pil
  chromium
)
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
