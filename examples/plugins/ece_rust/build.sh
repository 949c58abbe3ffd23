#!/bin/sh
# Builds ece.wasm from the Rust sources with the mlc-plugin-sdk.
# Needs: rustup target add wasm32-unknown-unknown
set -eu
cd "$(dirname "$0")"
target="${CARGO_TARGET_DIR:-target}"
cargo build --quiet --release --target wasm32-unknown-unknown
cp "$target/wasm32-unknown-unknown/release/mlc_plugin_ece.wasm" ece.wasm
