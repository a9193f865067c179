// sort [--mode lines|chars] [--generate LINES] INPUT OUTPUT (see crates/sort for the definition).
package main

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"

	"wnb/workloads/protocol"
)

const usage = "usage: sort [--mode lines|chars] [--generate LINES] INPUT OUTPUT"

func fail(code int, msg string) { protocol.Fail("sort", code, msg) }

func main() {
	protocol.Start("sort")
	byChars := false
	generate := false
	var generateLines uint64
	var files []string
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		arg := args[i]
		next := func() string {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch {
		case arg == "--mode":
			switch v := next(); v {
			case "lines":
				byChars = false
			case "chars":
				byChars = true
			default:
				fail(2, "--mode takes `lines` or `chars`, got \""+v+"\"\n"+usage)
			}
		case arg == "--generate":
			v := next()
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				fail(2, "--generate takes a line count, got \""+v+"\"\n"+usage)
			}
			generate, generateLines = true, n
		case strings.HasPrefix(arg, "--"):
			fail(2, "unknown option "+arg+"\n"+usage)
		default:
			files = append(files, arg)
		}
	}
	if len(files) != 2 {
		fail(2, "expected INPUT and OUTPUT, got "+strconv.Itoa(len(files))+" file arguments\n"+usage)
	}
	inputPath, outputPath := files[0], files[1]

	if generate {
		rng := protocol.NewSplitMix64(42)
		var gen []byte
		for l := uint64(0); l < generateLines; l++ {
			n := 3 + rng.NextBelow(10)
			for k := uint64(0); k < n; k++ {
				gen = append(gen, byte('a'+rng.NextBelow(26)))
			}
			gen = append(gen, '\n')
		}
		if err := os.WriteFile(inputPath, gen, 0o644); err != nil {
			fail(1, "cannot write generated input "+inputPath+": "+err.Error())
		}
	}
	input, err := os.ReadFile(inputPath)
	if err != nil {
		fail(1, "cannot read "+inputPath+": "+err.Error())
	}
	var lines [][]byte
	if len(input) > 0 {
		lines = bytes.Split(bytes.TrimSuffix(input, []byte("\n")), []byte("\n"))
	}
	if byChars {
		for _, l := range lines {
			slices.Sort(l)
		}
	} else {
		slices.SortFunc(lines, bytes.Compare)
	}
	output := make([]byte, 0, len(input)+1)
	for _, l := range lines {
		output = append(append(output, l...), '\n')
	}
	if err := os.WriteFile(outputPath, output, 0o644); err != nil {
		fail(1, "cannot write "+outputPath+": "+err.Error())
	}
	h := protocol.NewFnv1a64()
	h.Update(output)
	mode := "lines"
	if byChars {
		mode = "chars"
	}
	os.Stdout.WriteString("sort mode=" + mode + " lines=" + strconv.Itoa(len(lines)) + " bytes=" +
		strconv.Itoa(len(output)) + " output=" + outputPath + "\n")
	protocol.End(uint64(h))
}
