#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds and runs an outside
# project against it twice: with find_package(muster) and with pkg-config,
# each time the SDK alone and the gRPC channel pool (muster_grpc).
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build_dir=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null

cmake -S "$source_dir/tests/install/consumer" -B "$work/cmake" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/cmake" >/dev/null
"$work/cmake/consumer"
"$work/cmake/consumer_grpc"

pc_dir=$(dirname "$(find "$work/prefix" -name muster.pc | head -n 1)")
flags=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs muster)
c++ "$source_dir/tests/install/consumer/consumer.cc" $flags -o "$work/pc-consumer"
flags=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs muster_grpc)
c++ "$source_dir/tests/install/consumer/consumer_grpc.cc" $flags -o "$work/pc-consumer-grpc"
"$work/pc-consumer-grpc"
"$work/pc-consumer"
flags=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs muster_grpc)
c++ "$source_dir/tests/install/consumer/consumer_grpc.cc" $flags -o "$work/pc-consumer-grpc"
"$work/pc-consumer-grpc"
