# wellgate — the two commands a fresh machine needs are `make run` and `make test`.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := bin
export WELLGATE_PEERS := $(CURDIR)/.peers

.PHONY: run build test test-go test-arm peers vet bench load fuzz cross package clean

## run: the gateway with a built-in simulated wellsite (status page on http://127.0.0.1:8080)
run:
	$(GO) run ./cmd/wellgate demo

## build: the binary for this machine into bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/wellgate ./cmd/wellgate

## test: installs the test peers (mosquitto, socat, qemu, Tahu's decoder), then vet, race tests, ARM smoke
test: peers vet test-go test-arm

peers:
	bash scripts/install-peers.sh

vet:
	$(GO) vet ./...

test-go:
	WELLGATE_REQUIRE_PEERS=1 $(GO) test -race -count=1 -timeout 20m ./...

## test-arm: cross-build for arm64 and armhf and run them under qemu
test-arm: cross
	qemu-aarch64-static $(BIN)/wellgate-linux-arm64 version
	qemu-arm-static $(BIN)/wellgate-linux-armhf version
	@echo "arm smoke: 2 passed, 0 failed"

cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/wellgate-linux-arm64 ./cmd/wellgate
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/wellgate-linux-armhf ./cmd/wellgate
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/wellgate-linux-amd64 ./cmd/wellgate

## bench: every benchmark, with allocations
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## load: the long measurements, kept out of `make test` by the load build tag:
## 50 devices x 200 tags polled at 1 s, 10 million samples queued, a 1-million-sample drain
load:
	WELLGATE_LOAD=20s $(GO) test -tags load -count=1 -run TestPollLoad -v ./drivers/modbus/
	WELLGATE_BENCH_10M=1 $(GO) test -tags load -count=1 -run TestDiskMemoryFlat10M -v ./bridge/queue/
	WELLGATE_BENCH_DRAIN=1 $(GO) test -tags load -count=1 -run TestDrainAfterOutage1M -v ./bridge/

## fuzz: each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf $(BIN) dist

## package: the .deb for ARCH (arm64, armhf or amd64) into dist/, with nfpm from the Go proxy
ARCH ?= arm64
NFPM := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
package: cross
	mkdir -p dist
	DEB_ARCH=$(ARCH) VERSION=$(patsubst v%,%,$(VERSION)) BINARY=$(BIN)/wellgate-linux-$(ARCH) \
	  $(GO) run $(NFPM) package --config packaging/nfpm.yaml --packager deb --target dist/
