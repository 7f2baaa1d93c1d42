# The commands a person uses; README.md explains them. CMake does the building.
#   make          build into build/ (binaries in build/bin/)
#   make test     build, then run every test, and every test again built with ASan+UBSan
#   make demo     build, then walk through signed images, a security service on loopback,
#                 two devices (soft and swtpm) attesting, getting certificates, taking updates,
#                 one blocked, and (as root) apps in compartments under rampart-monitor, a crash
#                 bucket and a quarantine
#   make fuzz     run each libFuzzer target for FUZZ_SECONDS (default 60)
#   make bench    run the benchmarks in bench/ (bench/mcu.sh: the microcontroller's, when the host
#                 build made build/mcu, which needs arm-none-eabi-gcc and qemu-system-arm)
#   make size     build, then print the lines of C that run privileged (rampart-monitor)
#   make package  build, then the Debian packages into build/packages/ (scripts/package)
#   make mcu      the microcontroller build into build-mcu/: the secure boot stage, the secure
#                 attestation service linked apart and the sample app for QEMU's mps2-an505
#                 (boot.elf, attest.elf and attest.bin, app.elf, app.bin); MCU_KEY=PUB.pem names
#                 the key the boot stage trusts (default: the development key in mcu/keys/)
#   make prove    Frama-C's Eva over the boot stage's verification path (mcu/prove/run.sh): fails
#                 on any alarm not listed in mcu/prove/alarms.expected (docs/mcu.md, proof)
# Each of them first installs any missing Debian package (scripts/install-deps).

BUILD        ?= build
ASAN_BUILD   ?= build-asan
FUZZ_BUILD   ?= build-fuzz
MCU_BUILD    ?= build-mcu
MCU_KEY      ?=
JOBS         ?= $(shell nproc)
FUZZ_SECONDS ?= 60
CMAKE        ?= cmake

.PHONY: all build deps asan test demo fuzz bench size package mcu prove format clean

all: build

deps:
	@scripts/install-deps

build: deps
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS)

# The sanitizer build uses clang, so every `make test` also proves the tree builds with clang.
asan: deps
	@$(CMAKE) -S . -B $(ASAN_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
		-DRP_SANITIZE=ON >/dev/null
	@$(CMAKE) --build $(ASAN_BUILD) -j $(JOBS)

# The tests include prove.eva (Frama-C), whose package only --prove installs.
test: build asan
	@scripts/install-deps --prove
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) -LE gcc_only

demo: build
	@scripts/demo $(BUILD)/bin

fuzz: deps
	@$(CMAKE) -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
		-DRP_FUZZ=ON >/dev/null
	@$(CMAKE) --build $(FUZZ_BUILD) -j $(JOBS)
	@scripts/fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS)

# BENCH_DB=sqlite|postgresql|all (sqlite): which databases bench-attest and bench-fleet run on.
# PostgreSQL: a throwaway PostgreSQL 15 per run, started and stopped by tests/tools/pg; bench-attest
# with one replica and with two. BENCH_FLEET_DEVICES: the fleet bench-fleet loads (100000; its
# figures in docs/scale.md are at 1000000: 3 to 15 minutes on the 2-core VM, with its load).
BENCH_DB ?= sqlite
BENCH_FLEET_DEVICES ?= 100000
BENCH_PG = tests/tools/pg run sh -c '"$$0" --database "$$RAMPART_TEST_PG" "$$@"'
bench: build
	@$(BUILD)/bin/bench-image-verify
	@if [ "$(BENCH_DB)" != postgresql ]; then $(BUILD)/bin/bench-attest; fi
	@if [ "$(BENCH_DB)" != sqlite ]; then \
		$(BENCH_PG) $(BUILD)/bin/bench-attest --seconds 4 && \
		$(BENCH_PG) $(BUILD)/bin/bench-attest --seconds 4 --replicas 2; fi
	@if [ "$(BENCH_DB)" != postgresql ]; then \
		$(BUILD)/bin/bench-fleet --devices $(BENCH_FLEET_DEVICES); fi
	@if [ "$(BENCH_DB)" != sqlite ]; then \
		$(BENCH_PG) $(BUILD)/bin/bench-fleet --devices $(BENCH_FLEET_DEVICES); fi
	@$(BUILD)/bin/bench-reports
	@bench/update.sh $(BUILD)/bin
	@$(BUILD)/bin/bench-app-start
	@bench/footprint.sh $(BUILD)/bin
	@bench/mcu.sh $(BUILD)/mcu $(BUILD)/bin/rampart

size: build
	@scripts/size $(BUILD)/rampart-monitor.map

package: build
	@scripts/package $(BUILD)

mcu: deps
	@$(CMAKE) -S mcu -B $(MCU_BUILD) -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/mcu/toolchain-arm-none-eabi.cmake \
		-DCMAKE_BUILD_TYPE=MinSizeRel -DMBEDTLS_SRC="$$(scripts/install-deps --mbedtls-dir)" \
		-DMCU_KEY="$(MCU_KEY)" >/dev/null
	@$(CMAKE) --build $(MCU_BUILD) -j $(JOBS)

prove:
	@scripts/install-deps --prove
	@mcu/prove/run.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(MCU_BUILD)
