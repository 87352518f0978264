# Thin wrapper over CMake/ctest and scripts/; the README's commands.
#
#   make run     build, then start everything with a demo (scripts/stack.py run)
#   make test    unit tests of ./build, then unit and system tests under ASan+UBSan
#   make build   the optimised build in ./build
#   make bench   the benchmarks (bench/run)
#   make format  clang-format every C file
#   make clean   remove the build directories

BUILD_DIR ?= build
ASAN_DIR  ?= build-asan
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
PYTHON    ?= /usr/bin/python3
# Test filter for ctest, e.g. make test CTEST_ARGS='-R e2e'.
CTEST_ARGS ?=

C_DIRS  = common services sim tools tests bench
C_FILES = $(shell find $(wildcard $(C_DIRS)) -name '*.[ch]' 2>/dev/null)

.PHONY: all deps build build-asan test test-plain test-asan run bench format clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO='-O2 -g'
	cmake --build $(BUILD_DIR) -j$(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG='-O1 -g' -DBCRM_SANITIZE=ON
	cmake --build $(ASAN_DIR) -j$(JOBS)

# Unit tests of the optimised build (seconds), then every test, unit and system,
# under ASan+UBSan: the design requires the tests to pass there too.
test: test-plain test-asan

test-plain: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) -R '^unit\.' $(CTEST_ARGS)

test-asan: build-asan
	cd $(ASAN_DIR) && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

run: build
	BCRM_BUILD_DIR=$(abspath $(BUILD_DIR)) $(PYTHON) scripts/stack.py run

bench: build
	@if [ -x bench/run ]; then BCRM_BUILD_DIR=$(abspath $(BUILD_DIR)) bench/run; \
	else echo "bench: no bench/run yet"; fi

format:
	clang-format -i $(C_FILES)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
