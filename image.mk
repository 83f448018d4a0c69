# image.mk: gokrazy appliance images and their boot smoke test.
# Included by the Makefile, or used alone:
#   make -f Makefile -f image.mk image BOARD=arm64 IMAGE=out/arm64.img
#   make -f Makefile -f image.mk boot-smoke BOARD=arm64 IMAGE=out/arm64.img
#
# The image is built by the gok tool pinned in go.mod (`go tool gok`) from
# the instance configuration in gokrazy/$(BOARD)/config.json. Everything it
# needs comes through the Go module proxy: the kernel, gokrazy's init and
# system daemons, and our own cmd/sensor (built from this working tree via
# the replace directive in gokrazy/$(BOARD)/builddir/.../cmd/sensor/go.mod).

GO          ?= go
SUDO        ?= $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BOARD       ?= arm64
OUT         ?= out
IMAGE       ?= $(OUT)/$(BOARD).img
# Disk size the image is laid out for: gok needs at least 1100 MiB for the
# boot and two root partitions plus 100 MiB of /perm. 2 GiB gives /perm
# about 744 MiB, grown on the first boot to the end of the box's disk. The
# file is sparse: it takes ~100 MiB on disk.
IMAGE_BYTES ?= 2147483648
# The gokrazy instances (one directory per board); make e2e-update points
# it at derived instances to build its deliberately broken releases.
GOKRAZY_DIR ?= $(CURDIR)/gokrazy
GOK         := $(GO) tool gok --parent_dir $(GOKRAZY_DIR) -i $(BOARD)
IMAGE_APT   := e2fsprogs qemu-system-arm qemu-efi-aarch64
# The release key: the image trusts its public half (/etc/sensor/release.pub)
# and make release signs with it. Default: a development key made on first use.
RELEASE_KEY ?= $(OUT)/release-dev.key
# Version of what is built: a release tag, else 0.0.0-g<commit>.
VERSION     ?= $(shell git describe --tags 2>/dev/null || echo 0.0.0-g$$(git rev-parse --short HEAD 2>/dev/null))

.PHONY: image image-deps boot-smoke e2e e2e-smoke

image-deps:
	@missing=""; for c in e2fsck qemu-system-aarch64; do command -v $$c >/dev/null || missing=1; done; \
	[ -e /usr/share/AAVMF/AAVMF_CODE.fd ] || missing=1; \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(IMAGE_APT); \
	fi

# image writes a full disk image, laid out by cmd/release disk so that each
# A/B slot has its own boot files: a 300 MiB boot partition with slot A's
# files in a/ (arm64: systemd-boot, slot A's kernel and entry; rpi4: the
# firmware, config.txt and tryboot.txt naming a/, and a hybrid MBR for the
# firmware), root A (gok's squashfs), root B, and /perm left blank: the
# box's cmd/mkperm grows it to the end of its disk and makes its ext4 file
# system on the first boot.
IMAGE_VERSION ?= $(VERSION)
image: image-deps
	@test -f gokrazy/$(BOARD)/config.json || { echo "no gokrazy instance config gokrazy/$(BOARD)/config.json"; exit 1; }
	@mkdir -p $(dir $(IMAGE))
	rm -f $(IMAGE)
	@mkdir -p $(OUT)
	@test -f $(RELEASE_KEY) || { echo "no RELEASE_KEY: making a development key $(RELEASE_KEY)"; $(GO) run ./cmd/release keygen -o $(RELEASE_KEY) >/dev/null; }
	$(GO) run ./cmd/release pub -key $(RELEASE_KEY) > $(GOKRAZY_DIR)/$(BOARD)/release.pub
	@for c in sgdisk mkfs.vfat mcopy; do command -v $$c >/dev/null || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q gdisk dosfstools mtools; break; }; done
	$(GOK) overwrite --boot $(IMAGE).boot.fat --root $(IMAGE).root.squashfs > $(IMAGE).log 2>&1 || \
		{ cat $(IMAGE).log; echo "gok failed: see $(IMAGE).log"; exit 1; }
	$(GO) run ./cmd/release disk -board $(BOARD) -boot $(IMAGE).boot.fat -root $(IMAGE).root.squashfs -version $(IMAGE_VERSION) \
		-size $(IMAGE_BYTES) -o $(IMAGE)
	rm -f $(IMAGE).boot.fat
	@ls -ls $(IMAGE)

# boot-smoke writes the image to a bigger disk (a 4 GiB sparse file) and
# boots it under qemu-system-aarch64 (virt, cortex-a57, TCG, AAVMF pflash
# firmware): the first boot makes /perm and reboots, the sensor service
# runs, a code typed at the set-up console (plink) outlives a reboot, and
# after a power-off sgdisk, e2fsck and dumpe2fs check the disk; then
# (TestFirstBootCut) it boots disks a power cut left half way through the
# first boot (partition table half grown; file system without its magic
# number) and sees the box finish /perm.
BOOT_SMOKE_APT := plink:putty-tools tmux:tmux sgdisk:gdisk debugfs:e2fsprogs
boot-smoke: image-deps
	@for p in $(BOOT_SMOKE_APT); do command -v $${p%%:*} >/dev/null || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $${p#*:}; }; done
	$(GO) test -tags e2e -count=1 -v -timeout 20m ./e2e -run 'TestBootSmoke|TestFirstBootCut' -image $(abspath $(IMAGE))

# e2e builds the image and drives it as a site would (e2e/site_test.go):
# the set-up console over the UART in PuTTY's plink (static address proven
# from outside, personalization code), a real collector on the host, a
# corpus capture replayed into the sniffing NIC, and a reboot; then
# (e2e/panel_test.go) the board profile with the LCD, its front panel
# emulated on the host over a virtio-serial port, read and pressed.
E2E_APT := plink:putty-tools tmux:tmux debugfs:e2fsprogs
e2e: image
	@for p in $(E2E_APT); do command -v $${p%%:*} >/dev/null || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $${p#*:}; }; done
	$(GO) test -tags e2e -count=1 -v -timeout 20m ./e2e -run 'TestSite$$|TestPanel$$' -image $(abspath $(IMAGE))

# e2e-smoke is the short image check CI runs (e2e/smoke_test.go): build the
# image, boot it once with a collector and a code provisioned, see it
# register and report the plant capture replayed into its sniffing NIC.
e2e-smoke: image
	@command -v debugfs >/dev/null || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q e2fsprogs; }
	$(GO) test -tags e2e -count=1 -v -timeout 15m ./e2e -run 'TestUplinkSmoke$$' -image $(abspath $(IMAGE))

# release builds the update artefact of BOARD at VERSION: the root file
# system and the kernel (taken from the boot file system gok writes), signed
# with RELEASE_KEY into $(OUT)/release/. Without RELEASE_KEY a development
# key is made in $(OUT)/release-dev.key: sensors built with the real public
# key refuse what it signs. FLOOR signs a version floor (sensors that
# install it never go below it again); DOWNGRADE=1 orders a downgrade.
RELEASE_URL ?= https://updates.invalid/sensor/
FLOOR       ?=
DOWNGRADE   ?=
BOARD_PROFILE_arm64 := arm64-efi
BOARD_PROFILE_rpi4  := rpi4
# The boot files each slot carries (mtools patterns on gok's boot file
# system): the kernel; on the Raspberry Pi also the device trees of the Pi 4
# family and the firmware that config.txt's start_file and fixup_file name.
RELEASE_BOOT_arm64 := vmlinuz
RELEASE_BOOT_rpi4  := vmlinuz start4.elf fixup4.dat bcm2711-*.dtb

.PHONY: release
release:
	@command -v mcopy >/dev/null || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q mtools; }
	@mkdir -p $(OUT)/release/$(BOARD)
	@test -f $(RELEASE_KEY) || { echo "no RELEASE_KEY: making a development key $(RELEASE_KEY)"; $(GO) run ./cmd/release keygen -o $(RELEASE_KEY); }
	$(GO) run ./cmd/release pub -key $(RELEASE_KEY) > $(GOKRAZY_DIR)/$(BOARD)/release.pub
	$(GOK) overwrite --root $(OUT)/release/$(BOARD)/root.squashfs --boot $(OUT)/release/$(BOARD)/boot.fat > $(OUT)/release/$(BOARD)/gok.log 2>&1 || \
		{ cat $(OUT)/release/$(BOARD)/gok.log; exit 1; }
	rm -rf $(OUT)/release/$(BOARD)/boot && mkdir -p $(OUT)/release/$(BOARD)/boot
	for f in $(RELEASE_BOOT_$(BOARD)); do mcopy -n -i $(OUT)/release/$(BOARD)/boot.fat "::$$f" $(OUT)/release/$(BOARD)/boot/ || exit 1; done
	$(GO) run ./cmd/release sign -key $(RELEASE_KEY) -board $(BOARD_PROFILE_$(BOARD)) -version $(VERSION) \
		-root $(OUT)/release/$(BOARD)/root.squashfs \
		$$(for f in $(OUT)/release/$(BOARD)/boot/*; do printf -- '-boot %s=%s ' "$${f##*/}" "$$f"; done) \
		-url $(RELEASE_URL) $(if $(FLOOR),-floor $(FLOOR)) $(if $(DOWNGRADE),-downgrade) -o $(OUT)/release

# e2e-update builds an image at 1.0.0, a good update to 1.1.0 (signed floor
# 1.1.0) and two releases broken as real ones break, from derived gokrazy
# instances: 1.2.1 whose sensor exits at start (its command line names a
# classes file the release does not ship) and 1.2.2 that hangs the box
# (e2e/hang). All are signed with the same key. The test (e2e/update_test.go)
# runs the real collector, which orders them, tinyproxy on the host as the
# site's proxy, and the image in qemu with an i6300esb watchdog; it kills
# qemu during an install and during a trial boot. Not part of make test.
E2E_UPDATE_APT := tinyproxy:tinyproxy debugfs:e2fsprogs mcopy:mtools
VARIANTS := $(OUT)/variants
.PHONY: e2e-update
e2e-update: image-deps
	@for p in $(E2E_UPDATE_APT); do command -v $${p%%:*} >/dev/null || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $${p#*:}; }; done
	$(MAKE) image BOARD=arm64 IMAGE=$(OUT)/arm64.img IMAGE_VERSION=1.0.0
	$(MAKE) release BOARD=arm64 VERSION=1.1.0 FLOOR=1.1.0
	$(GO) run ./e2e/variant -from gokrazy/arm64 -o $(VARIANTS)/sensor-exits/arm64 \
		-flags 'github.com/passivesensor/sensor/cmd/sensor=-config /etc/sensor/classes.json'
	$(MAKE) release BOARD=arm64 VERSION=1.2.1 GOKRAZY_DIR=$(CURDIR)/$(VARIANTS)/sensor-exits
	$(GO) run ./e2e/variant -from gokrazy/arm64 -o $(VARIANTS)/hang/arm64 -add github.com/passivesensor/sensor/e2e/hang
	$(MAKE) release BOARD=arm64 VERSION=1.2.2 GOKRAZY_DIR=$(CURDIR)/$(VARIANTS)/hang
	$(GO) test -tags e2e -count=1 -v -timeout 60m ./e2e -run TestUpdate -image $(abspath $(OUT)/arm64.img)
