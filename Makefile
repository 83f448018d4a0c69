# The sensor's build, test and demo entry points. Each target that needs
# system tools installs them first (Debian; as root or with sudo).

GO       ?= go
PKGS     := ./...
OUT      := out
# Tools the tests use, as command:package. Add one line per tool.
TEST_TOOLS := \
	tshark:tshark \
	tcpreplay:tcpreplay \
	ip:iproute2 \
	socat:socat \
	plink:putty-tools \
	dnsmasq:dnsmasq \
	tmux:tmux
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build test demo demo-data bench bench-compare fuzz deps vet

all: build test

# deps installs the Debian tools the tests use (tshark as the oracle,
# tcpreplay and iproute2 for live capture in network namespaces, plink for
# the serial console, dnsmasq as the DHCP server of the netcfg tests).
deps:
	@missing=""; for t in $(TEST_TOOLS); do command -v $${t%%:*} >/dev/null || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

# build proves the tree builds without cgo for both targets the product ships.
build:
	@mkdir -p $(OUT)/linux-arm64 $(OUT)/linux-amd64
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -o $(OUT)/linux-arm64/ ./cmd/...
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -o $(OUT)/linux-amd64/ ./cmd/...

vet:
	$(GO) vet $(PKGS)

test: deps
	$(GO) vet $(PKGS)
	$(GO) test -count=1 $(PKGS)

# demo runs the sensor on the plant capture embedded in the binary.
demo:
	$(GO) run ./cmd/sensor

# demo-data regenerates the embedded plant capture.
demo-data:
	$(GO) run ./cmd/plantgen -o demo/plant.pcap

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# bench-compare runs the sensor and nDPI's ndpiReader on the same capture
# in one run and prints packets/s of each and their ratio.
BENCH_PCAP ?= ../shared/corpus/ICS-Pcaps__DNP3__dnp3dataset_capturerem_to_cite_the_paper.pcap
bench-compare:
	@command -v ndpiReader >/dev/null || (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q libndpi-bin)
	$(GO) run ./cmd/sensor/benchcompare -pcap $(BENCH_PCAP)

# fuzz runs every fuzz target for FUZZTIME each.
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# Appliance images per board and their boot smoke test in qemu.
include image.mk
