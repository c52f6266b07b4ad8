# ptbhyve: `make demo` is the main job, `make test` the test suite (what CI
# runs). Both work on a fresh Debian 12 machine with Go 1.26 in
# /usr/local/go; run them as root where a test needs it.

GO          ?= go
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 5m
BIN         := bin/ptbhyve

.PHONY: all build demo bench test deps lint vet cross race unit plugin fuzz clean

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/ptbhyve

# The main job: a real VM (Debian's cloud kernel under QEMU) gets a ptbhyve
# device; the daemon attaches an AF_XDP port on a veth, and the guest's
# ptnet-pktgen streams to a receiver in another namespace, both printing
# rates. Needs root; installs QEMU and busybox-static when missing.
demo: deps build
	@if [ "$$(id -u)" != 0 ]; then echo "make demo needs root (network namespaces, AF_XDP, a VM): sudo make demo"; exit 1; fi
	$(GO) run ./internal/demo --ptbhyve $(BIN)

# The data path's speed with no VM: two guest devices joined by the
# zero-copy pipe, then by the copying switch, each against a same-run
# shared-ring reference.
bench: build
	./$(BIN) bench --backend pipe --runs 3 --frames 10000000
	./$(BIN) bench --backend switch --runs 3 --frames 5000000

test: deps lint cross plugin race unit

# What the VM tests and the demo need beyond Go: QEMU, and busybox-static
# for the guest's shell, ping and nc (the guest kernel itself is fetched by
# the tests with apt-get download, never installed). Installed when missing
# and running as root; otherwise those tests skip and say so.
DEBS := qemu-system-x86_64:qemu-system-x86 /bin/busybox:busybox-static
deps:
	@missing=""; for d in $(DEBS); do \
		f=$${d%%:*}; p=$${d#*:}; \
		{ command -v $$f >/dev/null || [ -x $$f ]; } || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else echo "note: missing$$missing and not root: the VM tests will skip"; fi; \
	fi

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
	$(GO) test -race -count=1 ./netmap/... ./ptnetmap/... ./internal/... ./ivshmem/... ./shmdev/... ./guestdrv/... ./bhyve/...

# The bhyve plugin's portable C protocol file: its own unit tests (gcc);
# bhyve/ptbp's tests then drive it against the Go server. The bhyve glue
# can only be syntax-checked here, against stub headers of bhyve's API.
plugin:
	$(MAKE) -C bhyve/plugin check
	$(MAKE) -C bhyve/plugin/bhyve check

unit:
	$(GO) test -count=1 ./...

# Fuzz each target for FUZZTIME (default 5m). While a worker minimises a
# new input it reports no execs, for up to a minute (-fuzzminimizetime):
# "0/sec" lines are that, not a hang; a hang ends the run with a failure.
fuzz:
	$(GO) test -run XXX -fuzz '^FuzzParseName$$' -fuzztime $(FUZZTIME) ./netmap/
	$(GO) test -run XXX -fuzz '^FuzzSyncLoop$$' -fuzztime $(FUZZTIME) ./ptnetmap/
	$(GO) test -run XXX -fuzz '^FuzzBounce$$' -fuzztime $(FUZZTIME) ./netmap/bounce/
	$(GO) test -run XXX -fuzz '^FuzzDevice$$' -fuzztime $(FUZZTIME) ./shmdev/
	$(GO) test -run XXX -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/config/
	$(GO) test -run XXX -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./bhyve/ptbp/

clean:
	rm -rf bin
	$(MAKE) -C bhyve/plugin clean
