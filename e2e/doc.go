// Package e2e boots the built appliance image under qemu-system-aarch64 and
// checks what a user of the box would see. Its tests carry the e2e build tag
// so that `go test ./...` leaves them out:
//
//	make -f Makefile -f image.mk image boot-smoke BOARD=arm64
//	go test -tags e2e -v ./e2e -image $PWD/out/arm64.img
package e2e
