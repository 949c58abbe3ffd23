#!/bin/sh
# Builds mean.wasm from mean.wat. Needs only cargo (the wat2wasm example of mlc-wasm);
# `wasm-tools parse mean.wat -o mean.wasm` gives the same bytes.
set -eu
cd "$(dirname "$0")"
cargo run --quiet -p mlc-wasm --example wat2wasm -- mean.wat mean.wasm
