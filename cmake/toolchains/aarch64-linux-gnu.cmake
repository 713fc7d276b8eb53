# cmake/toolchains/aarch64-linux-gnu.cmake — cross build for 64-bit Arm Linux on a Debian
# x86-64 host, to test the NEON kernels under qemu-aarch64 user mode (tools/run-isa-tests.sh).
# Needs (Debian 12): g++-aarch64-linux-gnu qemu-user-static, and after
# `dpkg --add-architecture arm64`: libtbb-dev:arm64 libgtest-dev:arm64.
# xsimd and nlohmann-json are header-only: the host's copies in /usr/include serve.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Libraries (oneTBB, GoogleTest) must be the arm64 ones: Debian's multiarch puts them under
# /usr/lib/aarch64-linux-gnu, the cross libc under /usr/aarch64-linux-gnu. Headers and CMake
# packages may also come from the host (/usr/include, /usr/share/cmake): header-only packages
# are architecture-independent, and CMake looks for arch-specific package configs under
# lib/${CMAKE_LIBRARY_ARCHITECTURE} (aarch64-linux-gnu), never the amd64 ones.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# Test binaries run under qemu user mode; gtest_discover_tests and ctest use this too.
# No `-L /usr/aarch64-linux-gnu`: with it qemu takes the dynamic loader from the cross
# toolchain's libc6-arm64-cross (glibc 2.36-8cross1) but, not finding libc.so.6 there under
# the multiarch path, the libc of libc6:arm64 (2.36-9+deb12u14) from /lib/aarch64-linux-gnu;
# a loader and a libc from different builds hang in the first pthread_create. Without -L both
# come from libc6:arm64 (/lib/ld-linux-aarch64.so.1 is that package's loader).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static)
