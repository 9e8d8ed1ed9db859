package connect_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/localstore"
)

func openStore(t *testing.T) *localstore.Store {
	t.Helper()
	st, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatalf("localstore.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestNewService(t *testing.T) {
	st := openStore(t)
	valid := func(change func(*connect.Options)) connect.Options {
		o := connect.Options{Meta: st, Secrets: st, HTTPClient: http.DefaultClient, LinkKey: testKey, PublicBaseURL: "https://ej-mautic.example.org"}
		change(&o)
		return o
	}
	tests := []struct {
		name    string
		opts    connect.Options
		wantErr string // "" for success
	}{
		{"valid", valid(func(*connect.Options) {}), ""},
		{"with a stage path", valid(func(o *connect.Options) { o.PublicBaseURL = "https://abc.execute-api.sa-east-1.amazonaws.com/prod/" }), ""},
		{"local http", valid(func(o *connect.Options) { o.PublicBaseURL = "http://127.0.0.1:8080" }), ""},
		{"no link key (callback)", valid(func(o *connect.Options) { o.LinkKey = nil }), ""},
		{"no metadata store", valid(func(o *connect.Options) { o.Meta = nil }), "required"},
		{"no secret store", valid(func(o *connect.Options) { o.Secrets = nil }), "required"},
		{"no HTTP client", valid(func(o *connect.Options) { o.HTTPClient = nil }), "required"},
		{"short link key", valid(func(o *connect.Options) { o.LinkKey = bytes.Repeat([]byte{1}, 16) }), "at least 32"},
		{"empty base URL", valid(func(o *connect.Options) { o.PublicBaseURL = "" }), "PUBLIC_BASE_URL"},
		{"relative base URL", valid(func(o *connect.Options) { o.PublicBaseURL = "/api" }), "PUBLIC_BASE_URL"},
		{"ftp base URL", valid(func(o *connect.Options) { o.PublicBaseURL = "ftp://ej.example.org" }), "PUBLIC_BASE_URL"},
		{"base URL with a query", valid(func(o *connect.Options) { o.PublicBaseURL = "https://ej.example.org/?a=1" }), "PUBLIC_BASE_URL"},
		{"base URL with a password", valid(func(o *connect.Options) { o.PublicBaseURL = "https://u:sekrit99@ej.example.org" }), "PUBLIC_BASE_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, err := connect.NewService(tt.opts)
			if tt.wantErr == "" {
				if err != nil || svc == nil {
					t.Fatalf("NewService = %v, %v; want a service", svc, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewService error = %v, want one mentioning %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "sekrit99") {
				t.Errorf("error %q repeats the password", err)
			}
		})
	}
}

func TestRedirectURI(t *testing.T) {
	st := openStore(t)
	tests := []struct{ base, want string }{
		{"https://ej-mautic.example.org", "https://ej-mautic.example.org/conversations/42/mautic/callback"},
		{"https://ej-mautic.example.org/", "https://ej-mautic.example.org/conversations/42/mautic/callback"},
		{"https://abc.execute-api.sa-east-1.amazonaws.com/prod", "https://abc.execute-api.sa-east-1.amazonaws.com/prod/conversations/42/mautic/callback"},
	}
	for _, tt := range tests {
		t.Run(tt.base, func(t *testing.T) {
			svc, err := connect.NewService(connect.Options{Meta: st, Secrets: st, HTTPClient: http.DefaultClient, PublicBaseURL: tt.base})
			if err != nil {
				t.Fatal(err)
			}
			if got := svc.RedirectURI("42"); got != tt.want {
				t.Errorf("RedirectURI = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestBeginAuthorizationWithoutKey proves a service made without the link
// key (the callback function's) refuses to start an authorization rather
// than accept unsigned links.
func TestBeginAuthorizationWithoutKey(t *testing.T) {
	st := openStore(t)
	svc, err := connect.NewService(connect.Options{Meta: st, Secrets: st, HTTPClient: http.DefaultClient, PublicBaseURL: "https://ej.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.BeginAuthorization(context.Background(), "42", "1.2.x")
	var p *connect.Problem
	if err == nil || errors.As(err, &p) {
		t.Errorf("BeginAuthorization without a key = %v, want an internal error", err)
	}
}

func TestSecretLogValue(t *testing.T) {
	var buf bytes.Buffer
	logger := newJSONLogger(&buf)
	logger.Info("x", "secret", connection.Secret{ClientSecret: "cs-value-123"}, "app", connection.AppSecret{APIKeys: []string{"api-key-456"}, LinkKey: []byte("link-key-789")})
	for _, s := range []string{"cs-value-123", "api-key-456", "link-key-789", "bGluay1rZXktNzg5"} {
		if strings.Contains(buf.String(), s) {
			t.Errorf("log line %s holds %q", buf.String(), s)
		}
	}
	if !strings.Contains(buf.String(), `"has_client_secret":true`) {
		t.Errorf("log line %s does not say a client secret is present", buf.String())
	}
}

func newJSONLogger(w *bytes.Buffer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }
