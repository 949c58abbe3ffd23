#!/bin/sh
# Builds trimmed_mean.wasm from trimmed_mean.c with clang and wasm-ld, no libc.
# Needs (Debian 12): apt-get install clang-16 lld-16  (or clang + lld of any recent version)
set -eu
cd "$(dirname "$0")"
CC="${CC:-$(command -v clang-16 || command -v clang)}"
# -B lets clang find wasm-ld under its versioned Debian name (wasm-ld-16).
mkdir -p .bin && ln -sf "$(command -v wasm-ld-16 || command -v wasm-ld)" .bin/wasm-ld
"$CC" --target=wasm32 -O2 -nostdlib -ffreestanding -fno-builtin \
  -B.bin -Wl,--no-entry -Wl,--strip-all \
  -Wall -Wextra -Werror \
  -o trimmed_mean.wasm trimmed_mean.c
rm -rf .bin
