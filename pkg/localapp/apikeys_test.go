package localapp

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// TestAPIKeysFromEnv proves EJMAUTIC_API_KEYS takes the keys the app secret
// takes, no shorter: a short or non-ASCII key stops the start with an error
// that says which key and why.
func TestAPIKeysFromEnv(t *testing.T) {
	k1, k2 := strings.Repeat("a", 32), strings.Repeat("b", 40)
	t.Run("good keys", func(t *testing.T) {
		srv, err := Start(context.Background(), Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Env: envOf(map[string]string{"EJMAUTIC_API_KEYS": " " + k1 + " ,\t" + k2 + " "})})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		if !slices.Equal(srv.APIKeys, []string{k1, k2}) {
			t.Errorf("APIKeys = %q, want %q", srv.APIKeys, []string{k1, k2})
		}
	})
	for _, tt := range []struct{ name, keys, want string }{
		{"18 characters", k1 + ",short-key-18-chars", "key 2 of 2 is 18 characters long; at least 32"},
		{"31 characters", k1[1:], "key 1 of 1 is 31 characters long; at least 32"},
		{"no-break space", k1 + "\u00a0", "key 1 of 1 has a character other than printable ASCII"},
		{"inner space", k1 + " " + k2, "key 1 of 1 has a character other than printable ASCII"},
		{"empty key", k1 + ",,", "key 2 of 3 is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := Start(context.Background(), Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Env: envOf(map[string]string{"EJMAUTIC_API_KEYS": tt.keys})})
			if err == nil {
				srv.Close()
				t.Fatalf("Start accepted EJMAUTIC_API_KEYS=%q", tt.keys)
			}
			if msg := err.Error(); !strings.Contains(msg, "EJMAUTIC_API_KEYS") || !strings.Contains(msg, tt.want) {
				t.Errorf("error = %q, want it to name EJMAUTIC_API_KEYS and say %q", msg, tt.want)
			}
			if strings.Contains(err.Error(), k1) {
				t.Errorf("error %q quotes a key", err)
			}
		})
	}
}
