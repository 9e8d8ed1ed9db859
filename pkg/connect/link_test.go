package connect_test

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connect"
)

var (
	testKey  = bytes.Repeat([]byte("k"), 32)
	otherKey = bytes.Repeat([]byte("o"), 32)
	t0       = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
)

func newSigner(t testing.TB, key []byte) *connect.LinkSigner {
	t.Helper()
	s, err := connect.NewLinkSigner(key)
	if err != nil {
		t.Fatalf("NewLinkSigner: %v", err)
	}
	return s
}

func TestNewLinkSignerKeyLength(t *testing.T) {
	tests := []struct {
		name    string
		key     []byte
		wantErr bool
	}{
		{"nil", nil, true},
		{"31 bytes", bytes.Repeat([]byte{1}, 31), true},
		{"32 bytes", bytes.Repeat([]byte{1}, 32), false},
		{"64 bytes", bytes.Repeat([]byte{1}, 64), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := connect.NewLinkSigner(tt.key)
			if got := err != nil; got != tt.wantErr {
				t.Errorf("NewLinkSigner(%d bytes) error = %v, want error %v", len(tt.key), err, tt.wantErr)
			}
		})
	}
}

// TestNewLinkSignerCopiesKey proves a caller reusing its key buffer does not
// change the signer's key.
func TestNewLinkSignerCopiesKey(t *testing.T) {
	key := bytes.Repeat([]byte("k"), 32)
	s := newSigner(t, key)
	link := s.Sign("42", 1, t0.Add(time.Minute))
	key[0] = 'x'
	if _, err := s.Verify("42", link, t0); err != nil {
		t.Errorf("Verify after the caller changed its key buffer: %v", err)
	}
}

func TestLinkVerify(t *testing.T) {
	s := newSigner(t, testKey)
	exp := t0.Add(connect.LinkTTL)
	link := s.Sign("42", 7, exp)
	gen, expUnix, mac := splitLink(t, link)

	tests := []struct {
		name    string
		conv    string
		link    string
		now     time.Time
		wantGen int64
		wantErr error
	}{
		{"valid", "42", link, t0, 7, nil},
		{"valid a second before expiry", "42", link, exp.Add(-time.Second), 7, nil},
		{"expired at expiry", "42", link, exp, 0, connect.ErrLinkExpired},
		{"expired later", "42", link, exp.Add(time.Minute), 0, connect.ErrLinkExpired},
		{"other conversation", "43", link, t0, 0, connect.ErrLinkInvalid},
		{"conversation prefix", "4", link, t0, 0, connect.ErrLinkInvalid},
		{"conversation extended", "421", link, t0, 0, connect.ErrLinkInvalid},
		{"other key", "42", newSigner(t, otherKey).Sign("42", 7, exp), t0, 0, connect.ErrLinkInvalid},
		{"generation changed", "42", "8." + expUnix + "." + mac, t0, 0, connect.ErrLinkInvalid},
		{"generation with sign", "42", "+" + gen + "." + expUnix + "." + mac, t0, 0, connect.ErrLinkInvalid},
		{"generation with zero", "42", "0" + gen + "." + expUnix + "." + mac, t0, 0, connect.ErrLinkInvalid},
		{"expiry extended", "42", gen + "." + strconv.FormatInt(exp.Add(time.Hour).Unix(), 10) + "." + mac, t0, 0, connect.ErrLinkInvalid},
		{"mac flipped", "42", gen + "." + expUnix + "." + flipLast(mac), t0, 0, connect.ErrLinkInvalid},
		{"mac truncated", "42", gen + "." + expUnix + "." + mac[:len(mac)-1], t0, 0, connect.ErrLinkInvalid},
		{"mac padded", "42", link + "=", t0, 0, connect.ErrLinkInvalid},
		{"mac missing", "42", gen + "." + expUnix + ".", t0, 0, connect.ErrLinkInvalid},
		{"two parts", "42", gen + "." + expUnix, t0, 0, connect.ErrLinkInvalid},
		{"empty", "42", "", t0, 0, connect.ErrLinkInvalid},
		{"dots only", "42", "..", t0, 0, connect.ErrLinkInvalid},
		{"extra part", "42", link + ".x", t0, 0, connect.ErrLinkInvalid},
		{"very long", "42", strings.Repeat("1", 5000) + "." + expUnix + "." + mac, t0, 0, connect.ErrLinkInvalid},
		{"tampered and expired", "42", flipLast(link), exp.Add(time.Hour), 0, connect.ErrLinkInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gen, err := s.Verify(tt.conv, tt.link, tt.now)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Verify(%q, %q) error = %v, want %v", tt.conv, tt.link, err, tt.wantErr)
			}
			if gen != tt.wantGen {
				t.Errorf("generation = %d, want %d", gen, tt.wantGen)
			}
		})
	}
}

// TestLinkShape proves a link is URL-safe and holds no secret-looking or
// conversation data: generation, expiry and a 256-bit MAC.
func TestLinkShape(t *testing.T) {
	s := newSigner(t, testKey)
	link := s.Sign("conversation-42", 1795926828268703941, t0)
	gen, exp, mac := splitLink(t, link)
	if gen != "1795926828268703941" || exp != strconv.FormatInt(t0.Unix(), 10) {
		t.Errorf("link %q: generation %q, expiry %q", link, gen, exp)
	}
	if got, want := len(mac), 43; got != want {
		t.Errorf("MAC has %d characters, want %d (base64url of 32 bytes)", got, want)
	}
	if strings.ContainsFunc(link, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) {
		t.Errorf("link %q has characters that need escaping in a URL", link)
	}
	if strings.Contains(link, "conversation-42") {
		t.Errorf("link %q carries the conversation id", link)
	}
}

func splitLink(t testing.TB, link string) (gen, exp, mac string) {
	t.Helper()
	parts := strings.Split(link, ".")
	if len(parts) != 3 {
		t.Fatalf("link %q has %d parts, want 3", link, len(parts))
	}
	return parts[0], parts[1], parts[2]
}

func flipLast(s string) string {
	b := []byte(s)
	if b[len(b)-1] == 'A' {
		b[len(b)-1] = 'B'
	} else {
		b[len(b)-1] = 'A'
	}
	return string(b)
}

// FuzzVerifyLink checks that Verify never panics, that what it accepts is
// exactly what Sign produced for that conversation, and that a link signed
// for one conversation is never accepted for another or after tampering.
func FuzzVerifyLink(f *testing.F) {
	s := newSigner(f, testKey)
	exp := t0.Add(connect.LinkTTL)
	f.Add("42", s.Sign("42", 1, exp), "43", int64(1))
	f.Add("42", s.Sign("42", 1795926828268703941, exp), "4", int64(-5))
	f.Add("a_b-C", "1.1795927728.AAAA", "a_b-", int64(0))
	f.Add("", "", "", int64(0))
	f.Add("4\x002", "..", "4", int64(9))
	f.Add("42", "+1.1795927728."+strings.Repeat("A", 43), "042", int64(1<<62))

	f.Fuzz(func(t *testing.T, conv, link, other string, gen int64) {
		now := t0
		// Arbitrary input: no panic, and anything accepted is canonical.
		if g, err := s.Verify(conv, link, now); err == nil {
			_, expUnix, _ := strings.Cut(link, ".")
			expUnix, _, _ = strings.Cut(expUnix, ".")
			e, perr := strconv.ParseInt(expUnix, 10, 64)
			if perr != nil {
				t.Fatalf("Verify accepted %q with an unparsable expiry", link)
			}
			if want := s.Sign(conv, g, time.Unix(e, 0)); link != want {
				t.Fatalf("Verify accepted %q for %q, which Sign would write %q", link, conv, want)
			}
		} else if !errors.Is(err, connect.ErrLinkInvalid) && !errors.Is(err, connect.ErrLinkExpired) {
			t.Fatalf("Verify error %v is neither ErrLinkInvalid nor ErrLinkExpired", err)
		}

		// A genuine link: accepted for its conversation only.
		signed := s.Sign(conv, gen, exp)
		g, err := s.Verify(conv, signed, now)
		if err != nil || g != gen {
			t.Fatalf("Verify(Sign(%q, %d)) = %d, %v; want %d, nil", conv, gen, g, err, gen)
		}
		if other != conv {
			if _, err := s.Verify(other, signed, now); err == nil {
				t.Fatalf("link for %q accepted for %q", conv, other)
			}
		}
		if _, err := newSigner(t, otherKey).Verify(conv, signed, now); err == nil {
			t.Fatalf("link accepted under another key")
		}
		// Any one-byte change is refused.
		for i := range len(signed) {
			b := []byte(signed)
			b[i] ^= 1
			if _, err := s.Verify(conv, string(b), now); err == nil {
				t.Fatalf("tampered link %q (byte %d of %q) accepted", b, i, signed)
			}
		}
	})
}
