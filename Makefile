# Sluice: make run | make test | make bench
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN     := bin/sluice
CONFIG  ?= examples/quickstart.hcl

.PHONY: all build run test unit integration bench deps vet fmt-check clean

all: build

# Debian packages the build and tests use: util-linux's logger (bsdutils),
# gzip, gcc and libzmq (cgo, for the zmq plugins), and python3-zmq (real
# libzmq peers in the integration tests, run by Debian's /usr/bin/python3),
# rsyslog with its GnuTLS driver (a real syslog peer for the syslog output
# and TLS tests) and openssl.
deps:
	@need=""; \
	command -v logger >/dev/null || need="$$need bsdutils"; \
	command -v gzip   >/dev/null || need="$$need gzip"; \
	command -v gcc    >/dev/null || need="$$need gcc libc6-dev"; \
	command -v pkg-config >/dev/null || need="$$need pkg-config"; \
	[ -f /usr/include/zmq.h ] || need="$$need libzmq3-dev"; \
	/usr/bin/python3 -c 'import zmq' 2>/dev/null || need="$$need python3-zmq"; \
	[ -x /usr/sbin/rsyslogd ] || need="$$need rsyslog"; \
	ls /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1 || need="$$need rsyslog-gnutls"; \
	command -v openssl >/dev/null || need="$$need openssl"; \
	if [ -n "$$need" ]; then \
	  echo "installing:$$need"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$need; \
	fi
	@command -v $(GO) >/dev/null || { echo "Go 1.26 is required (expected at /usr/local/go)"; exit 1; }

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/sluice

run: deps build
	mkdir -p data
	$(BIN) run -config $(CONFIG)

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./integration/...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -race -count=1 ./...

# Integration tests drive a race-detector build of the binary.
integration:
	$(GO) build -race -o bin/sluice-race ./cmd/sluice
	SLUICE_BIN=$(CURDIR)/bin/sluice-race $(GO) test -race -count=1 -tags integration ./integration/...

test: deps fmt-check vet unit integration

# End-to-end benchmark (N messages over TCP into the built binary; memory
# queue against rsyslog, then the disk queue with fsync 1s and always) plus
# the Go micro-benchmarks. BENCH_N sets the message count.
BENCH_N ?= 1000000
bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem ./rules ./inputs/... ./outputs/... ./spool
	$(GO) run ./cmd/sluice-bench -sluice $(BIN) -n $(BENCH_N)
	$(GO) run ./cmd/sluice-bench -sluice $(BIN) -n $(BENCH_N) -no-rsyslog -only plain,gzip1,fwd -queue disk
	$(GO) run ./cmd/sluice-bench -sluice $(BIN) -n $(BENCH_N) -no-rsyslog -only plain -queue disk -fsync always

clean:
	rm -rf bin data
