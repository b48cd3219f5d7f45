#!/bin/sh
# Installs the llama.cpp peer used by test/convert/llama_cpp.test.ts and bench/llama_cpp.ts:
# the npm package node-llama-cpp (prebuilt CPU llama.cpp binaries, about 700 MB with all its GPU
# flavours) into .llama-cpp/ (gitignored), outside the project's own dependencies, so `npm ci`
# stays lean. No install scripts are run (--ignore-scripts): the prebuilt binaries are optional
# dependencies of the package, and the tests load them with build: "never", skipDownload: true,
# so nothing is compiled or downloaded at run time.
#
#   sh scripts/install-llama-cpp.sh            # default version
#   NODE_LLAMA_CPP_VERSION=3.22.1 sh scripts/install-llama-cpp.sh
#
# Tests and benches look in .llama-cpp/ unless TFREE_LLAMA_CPP_DIR names another folder that holds
# node_modules/node-llama-cpp.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dir="${TFREE_LLAMA_CPP_DIR:-$here/.llama-cpp}"
version="${NODE_LLAMA_CPP_VERSION:-3.22.1}"
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || printf '{ "name": "tfree-llama-cpp-peer", "private": true }\n' > package.json
npm install "node-llama-cpp@$version" --no-audit --no-fund --ignore-scripts --no-save
echo "node-llama-cpp $version installed in $dir"
