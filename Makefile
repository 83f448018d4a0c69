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
	tinyproxy:tinyproxy \
	tmux:tmux \
	sgdisk:gdisk \
	mcopy:mtools \
	mkfs.vfat:dosfstools \
	mkfs.ext4:e2fsprogs
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

# oui-data regenerates the MAC vendor table the inventory embeds from the
# IEEE registries in Debian's ieee-data package (MA-L, MA-M, MA-S, IAB).
IEEE_DATA ?= /usr/share/ieee-data
.PHONY: oui-data
oui-data:
	@test -f $(IEEE_DATA)/oui.csv || (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q ieee-data)
	$(GO) run ./asset/internal/ouigen -dir $(IEEE_DATA) -o asset/oui.txt.gz

# p0f-data regenerates the TCP signature table the inventory embeds from
# Debian p0f's p0f.fp (LGPL-2.1, (C) Michal Zalewski; shipped as data with
# its notice): only the [tcp:request] and [tcp:response] sections.
P0F_FP ?= /etc/p0f/p0f.fp
.PHONY: p0f-data
p0f-data:
	@test -f $(P0F_FP) || (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q p0f)
	{ echo "; TCP/IP stack signatures from p0f v3's p0f.fp ($(P0F_FP) of $$(date -u -r $(P0F_FP) +%F))."; \
	  echo "; Copyright (C) 2012 by Michal Zalewski <lcamtuf@coredump.cx>; distributed under the GNU LGPL 2.1."; \
	  echo "; Only the tcp:request and tcp:response sections, comments dropped; regenerate with make p0f-data."; \
	  sed -n '/^\[tcp:request\]/,/^\[http:request\]/p' $(P0F_FP) | grep -v '^;' | grep -v '^[[:space:]]*$$' | grep -v '^\[http'; \
	} > asset/p0f-tcp.fp

# enterprises-data regenerates it/data/enterprises.tsv, the IANA private
# enterprise numbers (id and name) that name an SNMP agent's maker from its
# sysObjectID, from Debian's libwireshark-data copy of the IANA registry.
ENTERPRISES_SRC ?= /usr/share/wireshark/enterprises.tsv
.PHONY: enterprises-data
enterprises-data:
	@test -r $(ENTERPRISES_SRC) || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q libwireshark-data; }
	@mkdir -p it/data
	{ printf '# IANA private enterprise numbers (id<TAB>name), from %s (libwireshark-data %s, %s), generated %s by make enterprises-data\n' \
		"$(ENTERPRISES_SRC)" "$$(dpkg-query -W -f='$${Version}' libwireshark-data 2>/dev/null)" \
		"$$(grep -o 'last updated [0-9-]*' $(ENTERPRISES_SRC) | head -1)" "$$(date -u +%Y-%m-%d)"; \
	  grep -v '^#' $(ENTERPRISES_SRC) | awk -F'\t' 'NF >= 2 && $$1 ~ /^[0-9]+$$/ { n = $$2; sub(/[ \t]*\(https?:[^)]*\)[ \t]*$$/, "", n); gsub(/[ \t]+$$/, "", n); if (n != "") print $$1 "\t" n }' | sort -n -k1,1; \
	} > it/data/enterprises.tsv

# ot-vendors regenerates the vendor-id tables the OT dissectors embed from
# their sources (id<TAB>name; the first line says where the facts come from).
VENDOR_SRC ?= ../shared/data
.PHONY: ot-vendors
ot-vendors:
	for t in cip bacnet; do \
		awk -F'\t' 'NR == 1 && /^#/ { print; next } /^[0-9]+\t/ { print $$1 "\t" $$2 }' \
			$(VENDOR_SRC)/$$t-vendors.tsv > ot/data/$$t-vendors.tsv.new && \
		mv ot/data/$$t-vendors.tsv.new ot/data/$$t-vendors.tsv; \
	done
