#!/usr/bin/env bash
# Installs the Debian 12 packages simdattn builds, tests and benchmarks with. Idempotent: it
# only calls apt-get when something is missing. Runs as root, or through sudo when available.
#   tools/install-deps.sh           build + tests + benchmarks (+ OpenBLAS/oneDNN peers, clang for fuzzing)
#   tools/install-deps.sh --torch   also python3-torch, for regenerating golden data and PyTorch benchmarks
#   tools/install-deps.sh --arm64   also the aarch64 cross compiler, qemu-user and arm64 oneTBB and
#                                   GoogleTest, for tools/run-isa-tests.sh neon
#   tools/install-deps.sh --bochs   also bochs and a boot kit, for AVX-512 runs (tools/avx512-bochs.sh)
set -euo pipefail

# Library: compiler, CMake, xsimd (header-only; its config names xtl), oneTBB, nlohmann-json.
# Tests: GoogleTest, pkg-config (packaging test), python3 (CLI tests write safetensors files),
# clang + its runtime (libFuzzer smoke runs). Benchmarks: Google Benchmark, and the OpenBLAS and
# oneDNN peers (optional: configure builds without them if they are missing or broken).
packages=(build-essential cmake pkg-config libxsimd-dev xtl-dev libtbb-dev nlohmann-json3-dev
          libgtest-dev python3 clang libclang-rt-14-dev
          libbenchmark-dev libopenblas-dev libdnnl-dev)
for arg in "$@"; do
  case "$arg" in
    --torch) packages+=(python3-torch python3-numpy) ;;
    --arm64) packages+=(g++-aarch64-linux-gnu qemu-user-static libc6:arm64 libtbb-dev:arm64
                        libgtest-dev:arm64) ;;
    # bochs emulates a Skylake-X; the kernel (only its vmlinuz is used), isolinux + xorriso
    # (boot ISO), busybox-static + cpio (initramfs) and bsdutils (`script`) boot the guest.
    --bochs) packages+=(bochs bochs-term bochsbios vgabios isolinux syslinux-common xorriso
                        busybox-static cpio bsdutils linux-image-cloud-amd64) ;;
    *) echo "install-deps.sh: unknown option '$arg' (expected --torch, --arm64, --bochs)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps.sh: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps.sh: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
case " ${missing[*]}" in
  *:arm64*) dpkg --print-foreign-architectures | grep -qx arm64 || "${sudo[@]}" dpkg --add-architecture arm64 ;;
esac
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
