#!/usr/bin/env bash
# Installs the Debian packages Muster needs to build, test and run.
# Idempotent and quiet when everything is already present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config curl
  # scripts/check-thread-safety.py (make check-locks, part of make test).
  python3
  libboost1.81-dev libboost-json1.81-dev
  libabsl-dev librocksdb-dev libspdlog-dev libfmt-dev
  libcli11-dev libtomlplusplus-dev
  libgrpc++-dev libprotobuf-dev libssl-dev protobuf-compiler protobuf-compiler-grpc
  libgtest-dev libgmock-dev libbenchmark-dev
  etcd-server etcd-client
  # make fuzz and the fuzz part of make test: clang with libFuzzer and the
  # sanitizer runtimes, llvm-symbolizer for readable reports.
  clang libclang-rt-14-dev llvm-14
)
# tests/consul-client (part of make test): Node.js and npm, Debian's unless a
# node and npm are on PATH already (NodeSource's nodejs carries its own npm and
# conflicts with Debian's npm package).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root or install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
