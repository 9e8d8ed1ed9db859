package failure

import (
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"strings"
	"testing"
)

// declared returns every constant of type Code declared in this package's
// non-test files.
func declared(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "failure.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for i, n := range vs.Names {
				out[n.Name] = strings.Trim(vs.Values[i].(*ast.BasicLit).Value, `"`)
			}
		}
	}
	return out
}

// TestEveryCodeIsCatalogued: each declared code has an entry with a
// message, and the catalog holds nothing undeclared.
func TestEveryCodeIsCatalogued(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	consts := declared(t)
	if len(consts) == 0 {
		t.Fatal("no Code constant found")
	}
	seen := map[Code]bool{}
	for name, v := range consts {
		c := Code(v)
		if seen[c] {
			t.Errorf("%s: code %q declared twice", name, v)
		}
		seen[c] = true
		e, ok := Lookup(c)
		switch {
		case !ok:
			t.Errorf("%s (%q) has no catalog entry", name, v)
		case strings.TrimSpace(e.Message) == "":
			t.Errorf("%s (%q) has no message", name, v)
		case e.Status != 0 && (e.Status < 400 || e.Status > 599):
			t.Errorf("%s (%q): status %d, want 4xx, 5xx or 0", name, v, e.Status)
		}
		if !snake.MatchString(v) {
			t.Errorf("%s: code %q is not snake_case", name, v)
		}
	}
	for _, c := range Codes() {
		if !seen[c] {
			t.Errorf("catalog entry %q has no declared constant", c)
		}
	}
}

// TestBrowserCodesHavePages: every code the authorize and callback pages
// can show has a whole page in both languages, and an unknown code falls
// back to the internal-error page.
func TestBrowserCodesHavePages(t *testing.T) {
	browser := []Code{
		LinkExpired, LinkInvalid, LinkSuperseded, StateMissing, StateInvalid, CookieMismatch, CodeMissing,
		AccessDenied, MauticError, CodeRejected, RedirectURIMismatch, ExchangeFailed, MauticPermissionDenied,
		MauticTokenRejected, MauticProbeFailed, InvalidConversationID, NotFound, InvalidClientCredentials,
		MauticAPIDisabled, MauticUnreachable, Internal,
	}
	for _, c := range browser {
		e, ok := Lookup(c)
		if !ok || e.Page == nil {
			t.Errorf("%q has no page", c)
			continue
		}
		p := *e.Page
		for name, v := range map[string]string{"TitlePT": p.TitlePT, "TitleEN": p.TitleEN, "WhatPT": p.WhatPT, "WhatEN": p.WhatEN, "NextPT": p.NextPT, "NextEN": p.NextEN} {
			if strings.TrimSpace(v) == "" {
				t.Errorf("%q: page field %s is empty", c, name)
			}
		}
		if e.Status == 0 {
			t.Errorf("%q answers a browser but has no HTTP status", c)
		}
	}
	if got := PageFor("no_such_code"); got != *catalog[Internal].Page {
		t.Errorf("PageFor(unknown) = %q, want the internal-error page", got.TitleEN)
	}
	if got := NotFound.Message("conversation 42"); got != "no Mautic connection for this conversation: conversation 42" {
		t.Errorf("Message with detail = %q", got)
	}
}
