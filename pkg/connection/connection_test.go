package connection

import (
	"regexp"
	"testing"
)

func TestSegmentAlias(t *testing.T) {
	tests := []struct{ id, want string }{
		{"42", "ej-conversation-42"},
		{"a-1", "ej-conversation-a-1"},
		{"abc", "ej-conversation-abc"},
	}
	for _, tt := range tests {
		if got := SegmentAlias(tt.id); got != tt.want {
			t.Errorf("SegmentAlias(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
	// Ids Mautic would clean into one alias get distinct ones, each
	// already clean (Mautic keeps it as sent).
	mauticClean := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	seen := map[string]string{}
	for _, id := range []string{"a_b", "a-b", "A-b", "a--b", "a-", "_a", "AB", "ab"} {
		got := SegmentAlias(id)
		if !mauticClean.MatchString(got) {
			t.Errorf("SegmentAlias(%q) = %q: Mautic would change it", id, got)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("SegmentAlias(%q) = SegmentAlias(%q) = %q", id, other, got)
		}
		seen[got] = id
	}
}

func TestGrantOrDefault(t *testing.T) {
	if got := (Connection{}).GrantOrDefault(); got != GrantAuthorizationCode {
		t.Errorf("no grant stored: %q, want %q", got, GrantAuthorizationCode)
	}
	if got := (Connection{Grant: GrantClientCredentials}).GrantOrDefault(); got != GrantClientCredentials {
		t.Errorf("client_credentials stored: %q", got)
	}
}
