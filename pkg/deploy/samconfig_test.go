package deploy

import (
	"path/filepath"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestSAMConfig checks samconfig.toml's defaults: builds in the source tree
// (the Makefile and Go's cache), cached and parallel; deploys that may
// create the functions' roles, show the change set first and make their
// own artifact bucket.
func TestSAMConfig(t *testing.T) {
	var cfg struct {
		Version float64 `toml:"version"`
		Default struct {
			Global struct {
				Parameters map[string]any `toml:"parameters"`
			} `toml:"global"`
			Build struct {
				Parameters map[string]any `toml:"parameters"`
			} `toml:"build"`
			Deploy struct {
				Parameters map[string]any `toml:"parameters"`
			} `toml:"deploy"`
		} `toml:"default"`
	}
	if _, err := toml.DecodeFile(filepath.Join(repoRoot(t), "samconfig.toml"), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Version != 0.1 {
		t.Errorf("version = %v, want 0.1", cfg.Version)
	}
	for _, c := range []struct {
		section string
		params  map[string]any
		key     string
		want    any
	}{
		{"build", cfg.Default.Build.Parameters, "cached", true},
		{"build", cfg.Default.Build.Parameters, "parallel", true},
		{"build", cfg.Default.Build.Parameters, "build_in_source", true},
		{"deploy", cfg.Default.Deploy.Parameters, "capabilities", "CAPABILITY_IAM"},
		{"deploy", cfg.Default.Deploy.Parameters, "confirm_changeset", true},
		{"deploy", cfg.Default.Deploy.Parameters, "resolve_s3", true},
	} {
		if got := c.params[c.key]; got != c.want {
			t.Errorf("default.%s.parameters.%s = %#v, want %#v", c.section, c.key, got, c.want)
		}
	}
	if cfg.Default.Global.Parameters["stack_name"] == nil {
		t.Error("default.global.parameters.stack_name is not set")
	}
}
