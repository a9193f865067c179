// Package protocol writes the start-of-main protocol lines and holds the helpers every Go
// workload shares. The definition lives in crates/protocol (Rust) and the README:
//
//	WNB start unix_ns=<u64> workload=<name> lang=go arch=<amd64|arm64|riscv64|wasm>
//	WNB end unix_ns=<u64> checksum=<16 lowercase hex digits>
//
// It avoids fmt so that TinyGo and Go binaries stay small.
package protocol

import (
	"os"
	"runtime"
	"strconv"
	"time"
)

// Go's GOARCH names are the OCI architecture names for all four targets.
func arch() string { return runtime.GOARCH }

func emit(line string) { os.Stdout.WriteString(line + "\n") }

// Start prints the start line; call it first thing in main.
func Start(workload string) {
	emit("WNB start unix_ns=" + strconv.FormatInt(time.Now().UnixNano(), 10) + " workload=" + workload +
		" lang=go arch=" + arch())
}

// End prints the end line; call it last thing in main.
func End(checksum uint64) {
	hex := strconv.FormatUint(checksum, 16)
	for len(hex) < 16 {
		hex = "0" + hex
	}
	emit("WNB end unix_ns=" + strconv.FormatInt(time.Now().UnixNano(), 10) + " checksum=" + hex)
}

// Fail reports an error on stderr and exits with code.
func Fail(workload string, code int, msg string) {
	os.Stderr.WriteString(workload + ": " + msg + "\n")
	os.Exit(code)
}

// Fnv1a64 is FNV-1a, 64-bit.
type Fnv1a64 uint64

func NewFnv1a64() Fnv1a64 { return 0xcbf29ce484222325 }

func (h *Fnv1a64) Update(b []byte) {
	for _, c := range b {
		*h = (*h ^ Fnv1a64(c)) * 0x100000001b3
	}
}

// SplitMix64 is identical to crates/detrand.
type SplitMix64 struct{ state uint64 }

func NewSplitMix64(seed uint64) *SplitMix64 { return &SplitMix64{seed} }

func (r *SplitMix64) NextU64() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *SplitMix64) NextF64() float64 {
	return float64(r.NextU64()>>11) * (1.0 / 9007199254740992.0)
}

func (r *SplitMix64) NextBelow(bound uint64) uint64 { return r.NextU64() % bound }
