#!/usr/bin/env bash
# tools/avx512-bochs.sh BINARY [ARGS...]
#
# Runs a dynamically linked x86-64 program (a test binary, the simdattn CLI) on an emulated
# Skylake-X CPU with AVX-512 (F/CD/BW/DQ/VL) under Debian 12's bochs, prints its output and exits
# with its exit status. For hosts without AVX-512 (the project's Zen 3 machines), so the AVX-512
# kernels run somewhere. Non-zero exit on any failure of the program, on a boot failure, and on a
# timeout (124).
#
# How it works:
#   1. Packs an initramfs (cpio, gzip): busybox-static as /bin/sh, the binary, every shared library
#      `ldd` lists plus the dynamic loader (each at its host path), the test data directories whose
#      absolute path is compiled into the binary (any existing ".../tests/data" string in it, e.g.
#      SIMDATTN_TEST_DATA_DIR), the paths in SIMDATTN_BOCHS_FILES, and an /init that mounts
#      proc/sys/dev, exports the pass-through environment, cds to the caller's working directory
#      (created empty if it is not packed), runs BINARY ARGS with output on the serial console,
#      prints a per-run unique end marker with the exit status, then waits (the UART may still
#      hold the tail of the output; an immediate poweroff dropped it) and finally powers off.
#   2. Builds a boot ISO (xorriso + isolinux) with the newest /boot/vmlinuz-*-cloud-amd64 kernel.
#      Kernel command line: console=ttyS0,115200 clearcpuid=xsaves,xsavec,aperfmperf. Without
#      xsaves,xsavec, Linux 6.1's XSAVE consistency check rejects the compacted-format size bochs
#      reports and turns AVX and AVX-512 off; aperfmperf stops a per-tick read of two MSRs bochs
#      lacks (each logged an error).
#   3. Starts bochs (cpu: model=corei7_skylake_x, display_library: term, clock: sync=none,
#      com1 to a file) under `script -qfc` so the term display has a terminal. Debian's bochs is
#      built with its debugger, so it starts with `-rc` holding the single command `c`. The term
#      display opens its own pty and prints `Bochs connected to screen "/dev/pts/N"`; a `cat`
#      drains that pty, or bochs blocks writing to it and the guest stops.
#   4. Polls the serial log for the end marker, kills bochs, prints what the program wrote
#      between the begin and end markers (kernel messages are kept quiet with loglevel=3), and
#      exits with the program's status. No marker: 3 (boot failure, guest crash); timeout: 124.
#      /init refuses to run the program (status 3) if the guest kernel reports no avx512f.
#
# Environment passed through into the guest: every SIMDATTN_* variable (SIMDATTN_ISA,
# SIMDATTN_THREADS, SIMDATTN_REQUIRE_ISAS, ...) except SIMDATTN_BOCHS_*, and GTEST_*.
# Settings:
#   SIMDATTN_BOCHS_TIMEOUT  wall-clock seconds for boot + run (default 3600); then bochs is
#                           killed and the script exits 124.
#   SIMDATTN_BOCHS_MEGS     guest memory in MiB (default 1024).
#   SIMDATTN_BOCHS_KERNEL   kernel image (default: newest /boot/vmlinuz-*-cloud-amd64).
#   SIMDATTN_BOCHS_FILES    colon-separated extra files/directories to pack at their host path
#                           (inputs named in ARGS, e.g. a checkpoint).
#   SIMDATTN_BOCHS_KEEP=1   keep the work directory (ISO, bochsrc, serial.out, bochs.log) and
#                           print its path.
#   SIMDATTN_BOCHS_VERBOSE=1  echo the whole serial log (boot messages too) at the end.
# Files the guest writes are lost; only the serial console comes back.
#
# Needs (Debian 12): bochs bochs-term bochsbios vgabios isolinux syslinux-common xorriso
# busybox-static cpio linux-image-cloud-amd64 (only its vmlinuz is used); `tools/install-deps.sh
# --bochs` installs them.
#
# Cost: bochs interprets, roughly 250x slower than the host for this code, and emulates ONE CPU
# (Debian's bochs has no SMP), so the *_Nthreads cases run on one thread there. Boot (BIOS,
# isolinux, 14 MB kernel, 5 MB initramfs) takes about a minute. Wall times measured on the Zen 3
# host (2 shared cores, other builds running, load 4-6: an idle host is faster), release build:
#   --gtest_filter='AllIsas/GemmIsaTest.*/avx512' (9 GEMM cases, CI smoke)   172-354 s
#   --gtest_filter='*avx512*' (all 75 AVX-512 cases)                            1320 s
#   SIMDATTN_ISA=avx512 --gtest_filter='-*avx512*:*avx2*:*sse2*:*neon*'
#     (the 327 cases not tied to one ISA, with AVX-512 as the default)           372 s
#   build/release/tools/simdattn difftest --isa avx512 --cases 1000 --seed 1      637 s
# Running the whole suite is not worth it: the avx2/sse2 cases repeat what the host runs
# natively; all 627 cases would take well over an hour (the first 139 took 29 min).
set -euo pipefail

# All of it in one function, read whole before it runs: editing this file under a running
# instance (bash reads scripts as it goes) then cannot change what that instance does.
main() {

die() { echo "avx512-bochs: $*" >&2; exit 2; }

[ $# -ge 1 ] || die "usage: $0 BINARY [ARGS...]"
binary=$(readlink -f -- "$1") || die "no such binary: $1"
shift
[ -f "$binary" ] && [ -x "$binary" ] || die "not an executable file: $binary"

timeout_s=${SIMDATTN_BOCHS_TIMEOUT:-3600}
megs=${SIMDATTN_BOCHS_MEGS:-1024}
kernel=${SIMDATTN_BOCHS_KERNEL:-}
if [ -z "$kernel" ]; then
  kernel=$(ls -1 /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1 || true)
fi
[ -n "$kernel" ] && [ -r "$kernel" ] || die "no kernel: install linux-image-cloud-amd64 or set SIMDATTN_BOCHS_KERNEL"

for tool in bochs script xorriso cpio gzip ldd awk; do
  command -v "$tool" >/dev/null || die "missing '$tool' (tools/install-deps.sh --bochs)"
done
busybox=/bin/busybox
for candidate in /usr/bin/busybox /bin/busybox; do
  if [ -x "$candidate" ] && ! ldd "$candidate" >/dev/null 2>&1; then busybox=$candidate; break; fi
done
ldd "$busybox" >/dev/null 2>&1 && die "need a static busybox (busybox-static)"
isolinux_bin=/usr/lib/ISOLINUX/isolinux.bin
ldlinux=/usr/lib/syslinux/modules/bios/ldlinux.c32
[ -r "$isolinux_bin" ] || die "missing $isolinux_bin (isolinux)"
[ -r "$ldlinux" ] || die "missing $ldlinux (syslinux-common)"
[ -r /usr/share/bochs/BIOS-bochs-latest ] || die "missing bochs BIOS (bochsbios)"
[ -r /usr/share/vgabios/vgabios.bin ] || die "missing VGA BIOS (vgabios)"

work=$(mktemp -d "${TMPDIR:-/tmp}/avx512-bochs.XXXXXX")
pids=()
cleanup() {
  local rc=$? i p
  # SIGKILL to bochs (it does not stop on SIGTERM, and has nothing to save); `script` (pids[1])
  # reaps it and exits once its stdin (the FIFO, pids[0]) ends. Then the rest.
  if [ -s "$work/bochs.pid" ]; then kill -9 "$(cat "$work/bochs.pid")" 2>/dev/null || true; fi
  if [ ${#pids[@]} -ge 1 ]; then kill "${pids[0]}" 2>/dev/null || true; fi
  if [ ${#pids[@]} -ge 2 ]; then
    for i in $(seq 50); do kill -0 "${pids[1]}" 2>/dev/null || break; sleep 0.2; done
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${SIMDATTN_BOCHS_KEEP:-0}" = 1 ]; then
    echo "avx512-bochs: kept $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,root,etc}

# copy_path SRC: pack SRC (file or directory, symlinks followed) at its own absolute path.
copy_path() {
  local src=$1 dst
  dst=$root$src
  mkdir -p "$(dirname "$dst")"
  if [ -d "$src" ]; then
    mkdir -p "$dst"
    cp -rL "$src/." "$dst/"
  else
    cp -L "$src" "$dst"
  fi
}

# The program, its libraries and the loader, each at its host path (and the path ldd resolved).
copy_path "$binary"
libs=$(ldd "$binary" 2>&1) || die "ldd failed on $binary (not dynamically linked x86-64?): $libs"
while read -r path; do
  [ -n "$path" ] && [ -e "$path" ] || continue
  copy_path "$path"
  real=$(readlink -f "$path")
  [ "$real" = "$path" ] || copy_path "$real"
done < <(printf '%s\n' "$libs" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
# oneTBB dlopens its allocator when present; pack it so the guest runs what the host runs.
tbb=$(printf '%s\n' "$libs" | awk '$1 ~ /^libtbb\.so/ { print $3 }')
if [ -n "$tbb" ]; then
  for extra in "$(dirname "$tbb")"/libtbbmalloc.so.2 "$(dirname "$tbb")"/libtbbmalloc_proxy.so.2; do
    [ -e "$extra" ] && copy_path "$extra"
  done
fi

# Data directories compiled into the binary (SIMDATTN_TEST_DATA_DIR), and extra paths.
while read -r dir; do
  [ -d "$dir" ] && copy_path "$dir"
done < <(grep -aoE '/[][A-Za-z0-9_.+@%,=~/-]*/tests/data' "$binary" | sort -u || true)
if [ -n "${SIMDATTN_BOCHS_FILES:-}" ]; then
  IFS=: read -r -a extras <<< "$SIMDATTN_BOCHS_FILES"
  for e in "${extras[@]}"; do
    [ -n "$e" ] || continue
    e=$(readlink -f -- "$e") && [ -e "$e" ] || die "SIMDATTN_BOCHS_FILES: no such path: $e"
    copy_path "$e"
  done
fi

cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# Single-quote a string for the guest's sh.
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

tag="SIMDATTN-BOCHS-$(date +%s%N)-$$-$RANDOM"
{
  echo '#!/bin/sh'
  echo '/bin/busybox --install -s /bin'
  echo 'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev 2>/dev/null'
  echo 'exec </dev/console >/dev/console 2>&1'
  echo 'export PATH=/bin HOME=/root TMPDIR=/tmp'
  # The guest's stdout is a console tty: keep GoogleTest from colouring unless asked to.
  [ -n "${GTEST_COLOR:-}" ] || echo 'export GTEST_COLOR=no'
  while IFS= read -r name; do
    case "$name" in SIMDATTN_BOCHS_*) continue ;; esac
    echo "export $name=$(q "${!name}")"
  done < <(compgen -e | grep -E '^(SIMDATTN|GTEST)_' || true)
  echo "mkdir -p $(q "$PWD") && cd $(q "$PWD")"
  echo "echo; echo '@@$tag-BEGIN@@'"
  cmd=$(q "$binary")
  for a in "$@"; do cmd+=" $(q "$a")"; done
  # Refuse to run without AVX-512: the program would silently skip or fall back.
  echo 'if grep -qw avx512f /proc/cpuinfo; then'
  echo "  $cmd"
  echo '  rc=$?'
  echo 'else'
  echo '  echo "avx512-bochs: the guest kernel reports no avx512f:"; grep -m1 flags /proc/cpuinfo; rc=3'
  echo 'fi'
  echo "echo; echo \"@@$tag-END rc=\$rc@@\""
  # Do not power off at once: the UART may still hold the tail of the output and the marker,
  # and poweroff drops it. The host kills bochs as soon as it reads the marker; the poweroff
  # only ends a run whose marker never reaches the host.
  echo 'sync; sleep 120; poweroff -f'
  echo 'sleep 60'
} > "$root/init"
chmod +x "$root/init"

iso=$work/iso
mkdir -p "$iso/isolinux"
cp "$isolinux_bin" "$ldlinux" "$iso/isolinux/"
cp "$kernel" "$iso/vmlinuz"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$iso/initrd.gz"
cat > "$iso/isolinux/isolinux.cfg" <<EOF
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  APPEND initrd=/initrd.gz console=ttyS0,115200 clearcpuid=xsaves,xsavec,aperfmperf loglevel=3 panic=-1
EOF
xorriso -as mkisofs -quiet -o "$work/boot.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
  -no-emul-boot -boot-load-size 4 -boot-info-table "$iso" 2>"$work/xorriso.log" \
  || die "xorriso failed: $(cat "$work/xorriso.log")"

cat > "$work/bochsrc" <<EOF
megs: $megs
cpu: model=corei7_skylake_x
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=cdrom, path=$work/boot.iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$work/serial.out
display_library: term
clock: sync=none, time0=local
mouse: enabled=0
log: $work/bochs.log
panic: action=fatal
error: action=report
info: action=ignore
debug: action=ignore
EOF
echo c > "$work/dbgrc"
: > "$work/serial.out"

start=$(date +%s)
# stdin: a FIFO kept open by a sleeping writer, so script never sees EOF and ends early.
mkfifo "$work/stdin"
sleep "$((timeout_s + 600))" > "$work/stdin" &
pids+=($!)
(cd "$work" && exec script -qfc \
  "echo \$\$ > $work/bochs.pid; exec bochs -q -f $work/bochsrc -rc $work/dbgrc" "$work/term.log" \
  < "$work/stdin" >/dev/null 2>&1) &
pids+=($!)

# Drain the term display's own pty, or bochs blocks on it and the guest stops.
pty=
while [ -z "$pty" ]; do
  pty=$(grep -ao 'connected to screen "/dev/pts/[0-9]*"' "$work/term.log" 2>/dev/null \
        | head -n 1 | sed 's/.*"\(.*\)"/\1/' || true)
  if [ -z "$pty" ]; then
    if [ $(( $(date +%s) - start )) -gt 120 ]; then
      echo "avx512-bochs: bochs did not open its display pty within 120 s" >&2
      sed 's/\r//' "$work/term.log" >&2 || true
      tail -n 20 "$work/bochs.log" >&2 || true
      exit 3
    fi
    sleep 0.2
  fi
done
cat "$pty" >/dev/null 2>&1 &
pids+=($!)

end_re="@@$tag-END rc=[0-9]+@@"
status=
while :; do
  if grep -aqE "$end_re" "$work/serial.out"; then
    status=$(grep -aoE "$end_re" "$work/serial.out" | head -n 1 | sed 's/.*rc=\([0-9]*\)@@/\1/')
    break
  fi
  if [ -s "$work/bochs.pid" ] && ! kill -0 "$(cat "$work/bochs.pid")" 2>/dev/null; then
    sleep 1
    grep -aqE "$end_re" "$work/serial.out" && continue
    break
  fi
  if [ $(( $(date +%s) - start )) -ge "$timeout_s" ]; then
    status=timeout
    break
  fi
  sleep 2
done
elapsed=$(( $(date +%s) - start ))

if [ "${SIMDATTN_BOCHS_VERBOSE:-0}" = 1 ]; then
  sed 's/\r$//' "$work/serial.out"
else
  # The program's output: the lines between the markers (the empty line echoed before the end
  # marker ends an unterminated last line and is dropped).
  sed 's/\r$//' "$work/serial.out" | awk -v b="@@$tag-BEGIN@@" -v e="@@$tag-END rc=" '
    index($0, e) { if (held && pending != "") print pending; exit }
    on { if (held) print pending; pending = $0; held = 1; next }
    $0 == b { on = 1 }'
fi

case "$status" in
  timeout)
    echo "avx512-bochs: timed out after ${timeout_s} s (SIMDATTN_BOCHS_TIMEOUT); last serial lines:" >&2
    sed 's/\r$//' "$work/serial.out" | tail -n 20 >&2
    exit 124 ;;
  '')
    echo "avx512-bochs: guest stopped without an exit status after ${elapsed} s (boot failure?);" \
         "serial log tail:" >&2
    sed 's/\r$//' "$work/serial.out" | tail -n 40 >&2
    echo "avx512-bochs: bochs.log tail:" >&2
    tail -n 20 "$work/bochs.log" >&2 || true
    exit 3 ;;
esac
echo "avx512-bochs: exit status $status after ${elapsed} s in bochs" >&2
exit "$status"
}

main "$@"
