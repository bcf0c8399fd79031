# wellgate — the two commands a fresh machine needs are `make run` and `make test`.
GO        ?= go
# A Debian version that sorts the way builds were made (see scripts/version.sh): X.Y.Z on a
# tag vX.Y.Z, X.Y.Z+N.gHASH after it, 0.0.0~gitYYYYMMDD.HASH without a tag. Override with
# `make package VERSION=...`. Computed once.
ifeq ($(origin VERSION),undefined)
VERSION   := $(shell sh scripts/version.sh)
endif
COMMIT    := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# The commit's date (UTC), so that the same commit builds the same binary.
BUILDDATE := $(shell TZ=UTC0 git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILDDATE)
BIN       := bin
DIST      := dist
export WELLGATE_PEERS := $(CURDIR)/.peers

.PHONY: run build test test-go test-arm test-package peers vet bench load fuzz cross package clean

## run: the gateway with a built-in simulated wellsite (status page on http://127.0.0.1:8080)
run:
	$(GO) run ./cmd/wellgate demo

## build: the binary for this machine into bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/wellgate ./cmd/wellgate

## test: installs the test peers (mosquitto, socat, qemu, Tahu's decoder, lintian), then vet, race
## tests, ARM smoke, and the .deb packages (contents, lintian, install/upgrade/purge as root)
test: peers vet test-go test-arm test-package

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

## cross: static binaries for every ARCH into bin/wellgate-linux-ARCH
ARCHES := amd64 arm64 armhf
GOARCH_amd64 := GOARCH=amd64
GOARCH_arm64 := GOARCH=arm64
GOARCH_armhf := GOARCH=arm GOARM=7
cross: $(addprefix cross-,$(ARCHES))
cross-%:
	@test -n '$(GOARCH_$*)' || { echo "unknown ARCH $*: one of $(ARCHES)" >&2; exit 2; }
	CGO_ENABLED=0 GOOS=linux $(GOARCH_$*) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/wellgate-linux-$* ./cmd/wellgate

## bench: the whole benchmark suite against the real binary (fleets, throughput ceiling, a
## 1-million-sample outage, footprint, and every Go micro benchmark), written to BENCHMARKS.md
## (about 7 minutes on 2 cores; needs mosquitto: `make peers`)
bench:
	$(GO) run ./tools/bench -out BENCHMARKS.md

## load: the long measurements, kept out of `make test` by the load build tag:
## 50 devices x 200 tags polled at 1 s, 10 million samples queued, a 1-million-sample drain,
## a late RTU slave for a minute, 5,000 OPC UA items (driver alone, then through the gateway)
load:
	WELLGATE_LOAD=20s $(GO) test -tags load -count=1 -run TestPollLoad -v ./drivers/modbus/
	WELLGATE_BENCH_10M=1 $(GO) test -tags load -count=1 -run TestDiskMemoryFlat10M -v ./bridge/queue/
	WELLGATE_BENCH_DRAIN=1 $(GO) test -tags load -count=1 -run TestDrainAfterOutage1M -v ./bridge/
	$(GO) test -tags load -count=1 -run TestLateSlave -v ./drivers/modbus/
	WELLGATE_LOAD=20s $(GO) test -tags load -count=1 -run TestSubscribeLoad -v ./drivers/opcua/
	WELLGATE_LOAD=30s $(GO) test -tags load -count=1 -run TestOPCUAGatewayLoad -v ./gateway/
	WELLGATE_LOAD=30s $(GO) test -tags load -count=1 -run 'TestFleetLoad$$' -v ./gateway/

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

## package: the .deb of every ARCH (amd64, arm64, armhf), or of the one named by ARCH=, into dist/,
## with nfpm from the Go module proxy at the version pinned in scripts/package.sh
PKG_ARCHES := $(if $(ARCH),$(ARCH),$(ARCHES))
package_debs = @for a in $(1); do \
	  GO='$(GO)' scripts/package.sh -a $$a -v '$(VERSION)' -b $(BIN)/wellgate-linux-$$a -o $(DIST) || exit 1; \
	done
package: $(addprefix cross-,$(PKG_ARCHES))
	$(call package_debs,$(PKG_ARCHES))

## test-package: build all three packages, then check them (dpkg-deb, lintian, systemd-analyze,
## qemu) and, as root, install, upgrade, remove and purge the amd64 one on this machine
test-package: $(addprefix cross-,$(ARCHES))
	$(call package_debs,$(ARCHES))
	WELLGATE_PACKAGE_TEST=1 WELLGATE_DIST=$(CURDIR)/$(DIST) WELLGATE_VERSION='$(VERSION)' \
	  $(GO) test -count=1 -timeout 10m -v ./packaging/
