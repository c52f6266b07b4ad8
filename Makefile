# ptbhyve: `make demo` is the main job, `make test` the test suite (what CI
# runs). Both work on a fresh Debian 12 machine with Go 1.26 in
# /usr/local/go; run them as root where a test needs it.

GO          ?= go
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 5m
BIN         := bin/ptbhyve

.PHONY: all build demo test deps lint vet cross race unit fuzz clean

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/ptbhyve

# The main job: the data path between two guest devices joined by a
# zero-copy pipe, then by the copying switch, each measured against a
# same-run shared-ring reference.
demo: build
	./$(BIN) ports 'netmap:ix0-1/x' 'vale0:vm1@conf:rings=2,slots=2048' 'pipe:p{0' 'xdp:eth0-2' 'ix0'; true
	./$(BIN) bench --backend pipe --runs 3 --frames 10000000
	./$(BIN) bench --backend switch --runs 3 --frames 5000000

test: deps lint cross race unit

# What the tests need beyond Go: QEMU, for the ivshmem tests against a real
# ivshmem-doorbell device. Installed when missing and running as root;
# otherwise those tests skip and say so.
deps:
	@command -v qemu-system-x86_64 >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing qemu-system-x86"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null; \
		else echo "note: qemu-system-x86_64 missing and not root: the QEMU tests will skip"; fi; }

lint:
	@out=$$(gofmt -l . | grep -v '^vendor/'); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=freebsd $(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Every package's FreeBSD test binary must build: the kernel-netmap and
# bhyve code cannot run here, but it is compiled and vetted.
cross:
	@set -e; for p in $$($(GO) list ./...); do \
		GOOS=freebsd $(GO) test -c -o /dev/null $$p; \
	done; echo "freebsd: every package and its tests build"

race:
	$(GO) test -race -count=1 ./netmap/... ./ptnetmap/... ./internal/... ./ivshmem/...

unit:
	$(GO) test -count=1 ./...

# Fuzz each target for FUZZTIME (default 5m).
fuzz:
	$(GO) test -run XXX -fuzz '^FuzzParseName$$' -fuzztime $(FUZZTIME) ./netmap/
	$(GO) test -run XXX -fuzz '^FuzzSyncLoop$$' -fuzztime $(FUZZTIME) ./ptnetmap/

clean:
	rm -rf bin
