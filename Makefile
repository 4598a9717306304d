# Muster — top-level entry points. Every target installs what it needs first.
#   make run            build and run musterd with the embedded store (data in ./muster-data)
#   make test           build and run every test, after make check-locks
#   make consul-client-deps   npm ci of tests/consul-client's pinned packages (part of make test)
#   make check-locks    clang's thread-safety check of every translation unit
#   make test-sanitize  run every test under ASan+UBSan, then under TSan
#   make bench          benchmarks (QUICK=1 for a reduced run)
#   make fuzz           run every libFuzzer target for FUZZ_SECONDS each (docs/fuzzing.md)

BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS = -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
ARGS ?=
# ccache hits across clones in different directories (CI builds a fresh clone).
export CCACHE_BASEDIR := $(CURDIR)
# -g puts the build directory into the objects; without this ccache would key on it.
export CCACHE_NOHASHDIR := 1

# make fuzz: seconds per target, and how many targets run at once.
FUZZ_SECONDS ?= 300
FUZZ_JOBS ?= $(JOBS)

.PHONY: all deps consul-client-deps build run test check-locks test-sanitize test-asan test-tsan bench clean fuzz fuzz-build fuzz-smoke

all: build

deps:
	@./scripts/install-deps.sh

# tests/consul-client runs on Node's consul package at the version its
# package-lock.json pins; npm ci installs it into tests/consul-client/node_modules
# from the npm registry, again only when package.json or the lock file changed
# (or node_modules is gone).
CONSUL_CLIENT_DIR := tests/consul-client
CONSUL_CLIENT_STAMP := $(CONSUL_CLIENT_DIR)/node_modules/.muster-npm-ci

$(CONSUL_CLIENT_STAMP): $(CONSUL_CLIENT_DIR)/package.json $(CONSUL_CLIENT_DIR)/package-lock.json | deps
	@echo "consul-client-deps: npm ci in $(CONSUL_CLIENT_DIR)"
	@cd $(CONSUL_CLIENT_DIR) && npm ci --no-audit --no-fund
	@touch $@

consul-client-deps: $(CONSUL_CLIENT_STAMP)

build/build.ninja: CMakeLists.txt | deps
	@cmake -S . -B build $(CMAKE_FLAGS) >/dev/null

build: deps build/build.ninja
	@cmake --build build -j $(JOBS)

run: build
	./build/musterd --data-dir ./muster-data $(ARGS)

# The lock annotations, checked by clang over every translation unit of the
# build (scripts/check-thread-safety.py; docs/design-notes.md, "Locks").
check-locks: build
	@./scripts/check-thread-safety.py --build-dir build --jobs $(JOBS)

# The lock check and the fuzz targets' fixed short runs first, so that the
# closing lines are the whole suite's.
test: build check-locks fuzz-smoke consul-client-deps
	cd build && ctest --output-on-failure -j $(JOBS) --timeout 600

# libFuzzer targets (fuzz/): clang with ASan+UBSan in build-fuzz, which builds
# only the libraries they link.
build-fuzz/build.ninja: CMakeLists.txt | deps
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DMUSTER_FUZZ=ON -DMUSTER_BUILD_TESTS=OFF >/dev/null

fuzz-build: deps build-fuzz/build.ninja
	@cmake --build build-fuzz -j $(JOBS) --target muster_fuzz

# A fixed number of runs per target from its seed corpus (part of make test).
fuzz-smoke: fuzz-build
	cd build-fuzz && ctest --output-on-failure -j $(JOBS) -L fuzz --timeout 300

# FUZZ_SECONDS of fuzzing per target; the corpora grow in build-fuzz/fuzz-work/.
fuzz: fuzz-build
	cd build-fuzz && MUSTER_FUZZ_SECONDS=$(FUZZ_SECONDS) ctest --output-on-failure -j $(FUZZ_JOBS) \
	  -L fuzz --timeout $$(( $(FUZZ_SECONDS) + 300 ))
	@cat build-fuzz/fuzz-work/*/summary

build-asan/build.ninja: CMakeLists.txt | deps
	@cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMUSTER_SANITIZE=address >/dev/null

build-tsan/build.ninja: CMakeLists.txt | deps
	@cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMUSTER_SANITIZE=thread >/dev/null

test-asan: deps build-asan/build.ninja consul-client-deps
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 900

test-tsan: deps build-tsan/build.ninja consul-client-deps
	@cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
	  ctest --output-on-failure -j $(JOBS) --timeout 900

test-sanitize: test-asan test-tsan

bench: build
	@cmake --build build -j $(JOBS) --target registry_bench
	@./scripts/bench.sh

clean:
	rm -rf build build-asan build-tsan build-fuzz
