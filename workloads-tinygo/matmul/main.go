// matmul [N]: naive i-j-k product of two deterministic N x N matrices (see crates/matmul).
package main

import (
	"math"
	"os"
	"strconv"

	"wnb/workloads/protocol"
)

func main() {
	protocol.Start("matmul")
	n := 100
	if len(os.Args) > 2 {
		protocol.Fail("matmul", 2, "unexpected argument\nusage: matmul [N]")
	}
	if len(os.Args) == 2 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v < 1 || v > 10000 {
			protocol.Fail("matmul", 2, "N must be a whole number from 1 to 10000, got \""+os.Args[1]+"\"")
		}
		n = v
	}
	rng := protocol.NewSplitMix64(1)
	a := make([]float64, n*n)
	b := make([]float64, n*n)
	c := make([]float64, n*n)
	for i := range a {
		a[i] = rng.NextF64()
	}
	for i := range b {
		b[i] = rng.NextF64()
	}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			sum := 0.0
			for k := 0; k < n; k++ {
				// The explicit conversion rounds the product, which stops Go from fusing
				// the multiply-add on arm64 and riscv64 (it would change the result bits).
				sum += float64(a[i*n+k] * b[k*n+j])
			}
			c[i*n+j] = sum
		}
	}
	h := protocol.NewFnv1a64()
	var le [8]byte
	for _, x := range c {
		bits := math.Float64bits(x)
		for i := 0; i < 8; i++ {
			le[i] = byte(bits >> (8 * i))
		}
		h.Update(le[:])
	}
	os.Stdout.WriteString("matmul n=" + strconv.Itoa(n) + " c[0][0]=" + strconv.FormatFloat(c[0], 'f', 6, 64) +
		" c[n-1][n-1]=" + strconv.FormatFloat(c[n*n-1], 'f', 6, 64) + "\n")
	protocol.End(uint64(h))
}
