# Muster — top-level entry points. Every target installs what it needs first.
#   make run            build and run musterd with the embedded store (data in ./muster-data)
#   make test           build and run every test
#   make test-sanitize  run every test under ASan+UBSan, then under TSan
#   make bench          benchmarks (QUICK=1 for a reduced run)

BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS = -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
ARGS ?=
# ccache hits across clones in different directories (CI builds a fresh clone).
export CCACHE_BASEDIR := $(CURDIR)
# -g puts the build directory into the objects; without this ccache would key on it.
export CCACHE_NOHASHDIR := 1

.PHONY: all deps build run test test-sanitize test-asan test-tsan bench clean

all: build

deps:
	@./scripts/install-deps.sh

build/build.ninja: CMakeLists.txt | deps
	@cmake -S . -B build $(CMAKE_FLAGS) >/dev/null

build: deps build/build.ninja
	@cmake --build build -j $(JOBS)

run: build
	./build/musterd --data-dir ./muster-data $(ARGS)

test: build
	cd build && ctest --output-on-failure -j $(JOBS) --timeout 600

build-asan/build.ninja: CMakeLists.txt | deps
	@cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMUSTER_SANITIZE=address >/dev/null

build-tsan/build.ninja: CMakeLists.txt | deps
	@cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMUSTER_SANITIZE=thread >/dev/null

test-asan: deps build-asan/build.ninja
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 900

test-tsan: deps build-tsan/build.ninja
	@cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
	  ctest --output-on-failure -j $(JOBS) --timeout 900

test-sanitize: test-asan test-tsan

bench: build
	@cmake --build build -j $(JOBS) --target registry_bench
	@./scripts/bench.sh

clean:
	rm -rf build build-asan build-tsan
