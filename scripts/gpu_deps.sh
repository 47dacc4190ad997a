#!/usr/bin/env bash
# Packs what building and testing cudl takes from this Debian machine's -dev packages into one
# archive, for a GPU machine that has the CUDA toolkit, a compiler, CMake and Python with
# PyTorch but not these packages, and cannot install any: headers, the shared libraries with
# every library they load (glibc's, libstdc++, libgcc and libgomp excepted: the machine has
# those, and a part of another glibc mixed with its own can fail to load), GoogleTest's static
# libraries, the CMake package files, and h5dump (a weights test reads cudl's files with it).
# The tree mirrors /usr, so CMake's own find modules (HDF5's Debian layout included) find
# everything under CMAKE_PREFIX_PATH=<unpacked>/usr (h5dump under its bin/);
# scripts/gpu_check.sh does this when given GPU_DEPS, and links cudl with the archive's library
# folders as RPATH, so that nothing else on the machine loads these libraries.
# oneDNN is in it (40 MB, 7 MB packed): the CPU side of that build is the one CI tests (oneDNN's
# direct convolutions and GEMMs; the im2col + OpenBLAS fallback exceeds one parity bound).
#
# Usage: scripts/gpu_deps.sh [ARCHIVE]      default build-deps/gpu-deps.tar.xz
set -euo pipefail
cd "$(dirname "$0")/.."
archive=${1:-build-deps/gpu-deps.tar.xz}
arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/gpu-deps"
mkdir -p "$root"

# Files of these packages: headers, libraries, CMake package files (not docs or binaries;
# h5dump is added below).
packages=(libhdf5-dev libhdf5-103-1 libjpeg62-turbo-dev libjpeg62-turbo libpng-dev libpng16-16
          zlib1g-dev zlib1g libopenblas-openmp-dev libopenblas0-openmp libgtest-dev
          libcli11-dev nlohmann-json3-dev libdnnl-dev libdnnl2)
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    { echo "gpu_deps: package $p is not installed (scripts/setup.sh)" >&2; exit 1; }
  { dpkg -L "$p" | grep -E '^(/usr)?/(include|lib|share/cmake)/' || true; } | while read -r f; do
    case "$f" in
      *.a) [[ $f == */libgtest* || $f == */libgmock* ]] || continue ;;  # shared libraries only
      *fortran* | *_cpp* | *hl_cpp*) continue ;;                       # cudl uses HDF5's C API
    esac
    if [ -f "$f" ] || [ -L "$f" ]; then
      dest="$root/usr${f#/usr}"  # /lib (merged into /usr/lib on Debian 12) goes under usr/ too
      mkdir -p "$(dirname "$dest")"
      if [ -L "$f" ] && [[ $(readlink "$f") == /* ]]; then
        # An absolute link (zlib's libz.so) would point into the GPU machine's own /lib: made
        # relative to its target, which lies in the same folder of the archive.
        ln -sfn "$(basename "$(readlink "$f")")" "$dest"
      else
        cp -a "$f" "$dest"
      fi
    fi
  done
done
dpkg-query -W -f='${Status}' hdf5-tools 2>/dev/null | grep -q "install ok installed" ||
  { echo "gpu_deps: package hdf5-tools is not installed (scripts/setup.sh)" >&2; exit 1; }
mkdir -p "$root/usr/bin"
cp -a /usr/bin/h5dump "$root/usr/bin/h5dump.bin"
# h5dump as a launcher that gives the real one the archive's libraries: the processes around it
# (Python with PyTorch among them) keep their own library path.
cat > "$root/usr/bin/h5dump" <<EOF
#!/bin/sh
d=\$(dirname "\$(readlink -f "\$0")")
a=\$d/../lib/$arch
LD_LIBRARY_PATH="\$a:\$a/hdf5/serial\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$d/h5dump.bin" "\$@"
EOF
chmod 755 "$root/usr/bin/h5dump"
# The libraries those load, by ldd, into the multiarch directory.
skip='^(libc|libm|libpthread|libdl|librt|libresolv|libnss_[a-z]+|libutil|libanl|libstdc\+\+|libgcc_s|libgomp|ld-linux[^ ]*)\.so'
{ find "$root" -name '*.so*' -type f; echo "$root/usr/bin/h5dump.bin"; } | while read -r lib; do
  ldd "$lib" 2>/dev/null | awk '/=> \// {print $1, $3}'
done | sort -u | while read -r name path; do
  [[ $name =~ $skip ]] && continue
  [ -e "$root/usr/lib/$arch/$name" ] && continue
  [ -n "$(find "$root" -name "$name" -print -quit)" ] && continue
  cp -L "$path" "$root/usr/lib/$arch/$name"
done
mkdir -p "$(dirname "$archive")"
tar -C "$stage" -cJf "$archive" gpu-deps
echo "gpu_deps: $archive ($(du -h "$archive" | cut -f1); $(du -sh "$root" | cut -f1) unpacked)"
