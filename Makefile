# Thin wrapper over CMake. The README's two commands (scripts/demo, scripts/test)
# install what is missing and then run `make demo` and `make test`. CI
# (.ci/run) runs test, format-check, check-deps, tidy, test-release, test-asan,
# fuzz, chart-check and dockerfile-check.
BUILD ?= build
ASAN_BUILD ?= build-asan
RELEASE_BUILD ?= build-release
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 30
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps dev-deps build demo test test-release test-asan check-deps tidy fuzz \
        format format-check clean ci-tools chart-check dockerfile-check

all: build

deps:
	@scripts/setup-deps.sh

# What the checks need on top: clang, clang-tidy, libFuzzer.
dev-deps:
	@scripts/setup-deps.sh --dev

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	@scripts/run-demo.sh $(BUILD)/revstream

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The suite on an optimized build (-O3 -DNDEBUG, -Werror as always).
test-release: deps
	cmake -S . -B $(RELEASE_BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(RELEASE_BUILD) -j $(JOBS)
	cd $(RELEASE_BUILD) && ctest --output-on-failure -j $(JOBS)

# The suite under ASan and UBSan; with gcc, RS_FUZZ adds the fuzz targets on
# their corpus-replay main() (ctest fuzz_*_corpus).
test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DRS_SANITIZE=ON -DRS_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

# The engine archive has no third-party symbol, metrics/ no engine header, no
# source outside tests/ is over 1,500 lines.
check-deps: build
	scripts/check-deps.sh $(BUILD)

# clang-tidy (.clang-tidy) over the sources, from $(BUILD)/compile_commands.json.
tidy: deps dev-deps $(BUILD)/CMakeCache.txt
	scripts/tidy.sh $(BUILD)

# The libFuzzer targets (clang, ASan, UBSan), each run FUZZ_SECONDS on its corpus.
fuzz: deps dev-deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -DRS_FUZZ=ON -DRS_BUILD_TESTS=OFF \
	  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1"
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_all
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The deployment checks' tools: Debian packages (setup-deps.sh --dev) and
# the npm packages of tools/ci/package-lock.json.
ci-tools:
	@tools/ci/install.sh

# helm/revstream without helm or a cluster: YAML, values against
# values.schema.json, templates rendered with text/template + sprig
# (tools/helmrender) and validated against the Kubernetes API schemas, the
# rendered worker.properties through `revstream worker --check`, the alert
# rules (promtool), and broken copies that must be refused.
chart-check: build ci-tools
	tools/ci/chart-check.sh $(BUILD)

# The Dockerfile through dockerfile-utils' linter (npm), warnings included.
dockerfile-check: ci-tools
	tools/ci/dockerfile-check.sh

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' '*.cpp')

format:
	clang-format -i $(FORMAT_FILES)

format-check: deps
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(RELEASE_BUILD) $(FUZZ_BUILD)
