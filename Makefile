# Thin wrapper: the real build is Meson (meson.build); these targets are the
# README's commands.
.PHONY: all demo check bench build clean

all: build

# Build and run the demo.
demo:
	@scripts/demo.sh

# Install dependencies, build debug/ASan+UBSan/TSan, run every test suite.
check:
	@scripts/check.sh

# make bench B=<name> [BENCH_QUICK=1]; without B, every benchmark.
bench:
	@BENCH_QUICK=$(BENCH_QUICK) scripts/bench.sh $(B)

# A debug build for development, in build/debug.
build:
	@[ -f build/debug/build.ninja ] || meson setup build/debug -Dbuildtype=debug
	@ninja -C build/debug

clean:
	rm -rf build
