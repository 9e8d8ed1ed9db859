package deploy

import (
	"debug/elf"
	"testing"
)

// TestBootstraps builds every function for arm64 (the Makefile's
// build-<LogicalId> targets, what sam build runs) and for amd64 (what
// aws-lambda-rie runs here), and checks that each is a static, stripped
// linux executable for its machine, without net/rpc (lambda.norpc).
func TestBootstraps(t *testing.T) {
	for _, c := range []struct {
		arch    string
		build   func() (map[string]string, error)
		machine elf.Machine
	}{
		{"arm64", builds.arm64, elf.EM_AARCH64},
		{"amd64", builds.amd64, elf.EM_X86_64},
	} {
		t.Run(c.arch, func(t *testing.T) {
			bins, err := c.build()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range functions {
				t.Run(f.dir, func(t *testing.T) {
					size, err := checkBootstrap(bins[f.dir], c.machine)
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("%s/%s bootstrap: %d bytes (%.1f MiB)", f.dir, c.arch, size, float64(size)/(1<<20))
				})
			}
		})
	}
}
