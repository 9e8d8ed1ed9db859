package secretstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/secretsmanagertest"
	"github.com/ejplatform/ej-mautic/pkg/secretstore"
)

const prefix = "ej-mautic/test"

func newStore(t *testing.T) (*secretstore.Store, *secretsmanagertest.Server, *secretsmanager.Client) {
	t.Helper()
	srv := secretsmanagertest.NewServer()
	t.Cleanup(srv.Close)
	c := srv.Client()
	return secretstore.New(c, prefix), srv, c
}

// canary marks secret values; no error may contain it.
const canary = "CANARY-7f3a"

func secretWith(n string) connection.Secret {
	return connection.Secret{
		ClientSecret: canary + "-client-" + n,
		Token: &oauth2.Token{
			AccessToken:  canary + "-access-" + n,
			TokenType:    "bearer",
			RefreshToken: canary + "-refresh-" + n,
			Expiry:       time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC),
		},
	}
}

func equalSecrets(a, b connection.Secret) bool {
	if a.ClientSecret != b.ClientSecret || (a.Token == nil) != (b.Token == nil) {
		return false
	}
	if a.Token == nil {
		return true
	}
	return a.Token.AccessToken == b.Token.AccessToken &&
		a.Token.RefreshToken == b.Token.RefreshToken &&
		a.Token.TokenType == b.Token.TokenType &&
		a.Token.Expiry.Equal(b.Token.Expiry)
}

func rawValue(t *testing.T, c *secretsmanager.Client, name, stage string) string {
	t.Helper()
	out, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionStage: aws.String(stage)})
	if err != nil {
		t.Fatalf("GetSecretValue %s %s: %v", name, stage, err)
	}
	return aws.ToString(out.SecretString)
}

// TestSecretValue: the secret is named as the package documentation says
// and holds the documented JSON. (The secret store contract is checked by
// the storetest suite: see TestConformance.)
func TestSecretValue(t *testing.T) {
	st, srv, c := newStore(t)
	ctx := context.Background()
	want := secretWith("1")

	if err := st.PutSecret(ctx, "42", want); err != nil {
		t.Fatal(err)
	}
	var stored map[string]any
	if err := json.Unmarshal([]byte(rawValue(t, c, "ej-mautic/test/conversations/42", "AWSCURRENT")), &stored); err != nil {
		t.Fatal(err)
	}
	if stored["client_secret"] != want.ClientSecret {
		t.Errorf("stored client_secret = %v, want %q", stored["client_secret"], want.ClientSecret)
	}
	tok, _ := stored["token"].(map[string]any)
	if tok["refresh_token"] != want.Token.RefreshToken || tok["access_token"] != want.Token.AccessToken || tok["expiry"] == nil {
		t.Errorf("stored token = %v, want access, refresh and expiry", tok)
	}

	t.Run("reads are counted", func(t *testing.T) {
		before := st.Reads()
		srv.ResetCalls()
		for range 3 {
			if _, err := st.GetSecret(ctx, "42"); err != nil {
				t.Fatal(err)
			}
		}
		if got := st.Reads() - before; got != 3 {
			t.Errorf("Reads() grew by %d, want 3", got)
		}
		if got := srv.Calls()["GetSecretValue"]; got != 3 {
			t.Errorf("server saw %d GetSecretValue, want 3", got)
		}
	})

	t.Run("a transient failure is retried by the SDK", func(t *testing.T) {
		before := st.Reads()
		srv.ResetCalls()
		srv.SetFailNext("GetSecretValue", secretsmanagertest.InternalServiceError())
		got, err := st.GetSecret(ctx, "42")
		if err != nil || !equalSecrets(got, want) {
			t.Fatalf("GetSecret = %+v, %v; want the secret", got, err)
		}
		if r, calls := st.Reads()-before, srv.Calls()["GetSecretValue"]; r != 1 || calls != 2 {
			t.Errorf("Reads() grew by %d and the server saw %d requests, want 1 and 2", r, calls)
		}
	})

	t.Run("trailing slash in the prefix", func(t *testing.T) {
		st2 := secretstore.New(c, prefix+"/")
		if name, err := st2.SecretName("42"); err != nil || name != "ej-mautic/test/conversations/42" {
			t.Errorf("SecretName = %q, %v; want %q", name, err, "ej-mautic/test/conversations/42")
		}
		got, err := st2.GetSecret(ctx, "42")
		if err != nil || !equalSecrets(got, want) {
			t.Errorf("GetSecret = %+v, %v; want the secret stored through the other store", got, err)
		}
	})
}

// TestScheduledForDeletion: a secret someone scheduled for deletion (an
// operator, with a recovery window) reads as missing.
func TestScheduledForDeletion(t *testing.T) {
	st, _, c := newStore(t)
	ctx := context.Background()
	if err := st.PutSecret(ctx, "410", secretWith("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(prefix + "/conversations/410"), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetSecret(ctx, "410"); !errors.Is(err, connection.ErrNotFound) {
		t.Fatalf("GetSecret of a secret scheduled for deletion: %v, want connection.ErrNotFound", err)
	}
}

// TestPutSecretVersions: the first write creates the secret, the next ones
// write a new version, and Secrets Manager keeps the replaced value as
// AWSPREVIOUS.
func TestPutSecretVersions(t *testing.T) {
	st, srv, c := newStore(t)
	ctx := context.Background()
	name := prefix + "/conversations/42"

	srv.ResetCalls()
	if err := st.PutSecret(ctx, "42", secretWith("1")); err != nil {
		t.Fatal(err)
	}
	if got := srv.Calls(); got["PutSecretValue"] != 1 || got["CreateSecret"] != 1 {
		t.Errorf("first PutSecret made %v, want one PutSecretValue (not found) and one CreateSecret", got)
	}

	srv.ResetCalls()
	if err := st.PutSecret(ctx, "42", secretWith("2")); err != nil {
		t.Fatal(err)
	}
	if got := srv.Calls(); got["PutSecretValue"] != 1 || len(got) != 1 {
		t.Errorf("second PutSecret made %v, want one PutSecretValue", got)
	}
	if cur := rawValue(t, c, name, "AWSCURRENT"); !strings.Contains(cur, secretWith("2").ClientSecret) {
		t.Errorf("AWSCURRENT = %s, want the second secret", cur)
	}
	if prev := rawValue(t, c, name, "AWSPREVIOUS"); !strings.Contains(prev, secretWith("1").ClientSecret) {
		t.Errorf("AWSPREVIOUS = %s, want the first secret", prev)
	}
}

func TestDeleteSecretFailure(t *testing.T) {
	st, srv, _ := newStore(t)
	srv.SetFailNext("DeleteSecret", &secretsmanagertest.Error{Status: 400, Type: "AccessDeniedException", Message: "not authorized"})
	if err := st.DeleteSecret(context.Background(), "42"); err == nil || !strings.Contains(err.Error(), "delete secret for conversation 42") {
		t.Errorf("DeleteSecret = %v, want an error naming the conversation", err)
	}
}

func TestPutSecretDuringDeletion(t *testing.T) {
	st, srv, c := newStore(t)
	ctx := context.Background()

	t.Run("scheduled for deletion: restored and written", func(t *testing.T) {
		if err := st.PutSecret(ctx, "1", secretWith("old")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(prefix + "/conversations/1")}); err != nil {
			t.Fatal(err)
		}
		if err := st.PutSecret(ctx, "1", secretWith("new")); err != nil {
			t.Fatalf("PutSecret on a secret scheduled for deletion: %v", err)
		}
		if got, err := st.GetSecret(ctx, "1"); err != nil || !equalSecrets(got, secretWith("new")) {
			t.Errorf("GetSecret = %+v, %v; want the new secret", got, err)
		}
	})

	t.Run("force deletion under way: conflict", func(t *testing.T) {
		srv.SetForceDeleteDelay(time.Hour)
		if err := st.PutSecret(ctx, "2", secretWith("old")); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteSecret(ctx, "2"); err != nil {
			t.Fatal(err)
		}
		err := st.PutSecret(ctx, "2", secretWith("new"))
		if !errors.Is(err, connection.ErrConflict) {
			t.Fatalf("PutSecret while the deletion is under way: %v, want connection.ErrConflict", err)
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("error leaks a secret: %v", err)
		}
		if _, err := st.GetSecret(ctx, "2"); !errors.Is(err, connection.ErrNotFound) {
			t.Errorf("GetSecret: %v, want connection.ErrNotFound", err)
		}
		if err := st.DeleteSecret(ctx, "2"); err != nil {
			t.Errorf("DeleteSecret again while the deletion is under way: %v, want nil", err)
		}
	})
}

// TestConcurrentFirstPut has many writers race to create the same secret:
// one secret is created, holding every write as a version.
func TestConcurrentFirstPut(t *testing.T) {
	st, srv, c := newStore(t)
	ctx := context.Background()
	const writers = 12

	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() { errs[i] = st.PutSecret(ctx, "race", secretWith(fmt.Sprint(i))) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := srv.Calls()["CreateSecret"]; got < 1 {
		t.Errorf("CreateSecret calls = %d, want at least 1", got)
	}
	l, err := c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.SecretList) != 1 {
		t.Errorf("%d secrets exist, want 1", len(l.SecretList))
	}
}

func TestSecretNameValidation(t *testing.T) {
	st, srv, _ := newStore(t)
	ctx := context.Background()

	valid := []string{"42", "a-B_0+=.@/z", "conv.2026", strings.Repeat("9", 512-len(prefix+"/conversations/"))}
	for _, id := range valid {
		name, err := st.SecretName(id)
		if err != nil {
			t.Errorf("SecretName(%.20q): %v", id, err)
			continue
		}
		if want := prefix + "/conversations/" + id; name != want {
			t.Errorf("SecretName(%.20q) = %.40q, want %.40q", id, name, want)
		}
	}
	// The charset-edge id round trips through the server's own name checks.
	if err := st.PutSecret(ctx, "a-B_0+=.@/z", secretWith("x")); err != nil {
		t.Errorf("PutSecret with every allowed punctuation character: %v", err)
	}

	srv.ResetCalls()
	invalid := []struct {
		id, wantErr string
	}{
		{"", "conversation id is empty"},
		{"a b", `conversation id "a b" has a character not allowed in secret names at byte 1`},
		{"conversação", "not allowed in secret names"},
		{"nul\x00", "not allowed in secret names"},
		{`quote"`, "not allowed in secret names"},
		{"semi;colon", "not allowed in secret names"},
		{"back\\slash", "not allowed in secret names"},
		{"\xff", "not allowed in secret names"},
		{strings.Repeat("9", 512-len(prefix+"/conversations/")+1), "conversation id is too long for a secret name"},
	}
	for _, tt := range invalid {
		t.Run(fmt.Sprintf("%.20q", tt.id), func(t *testing.T) {
			if _, err := st.SecretName(tt.id); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("SecretName: %v, want an error containing %q", err, tt.wantErr)
			}
			ops := map[string]error{
				"get":    func() error { _, err := st.GetSecret(ctx, tt.id); return err }(),
				"put":    st.PutSecret(ctx, tt.id, secretWith("x")),
				"delete": st.DeleteSecret(ctx, tt.id),
			}
			for op, err := range ops {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), op+" secret: ") {
					t.Errorf("%s: %v, want %q and an error containing %q", op, err, op+" secret: …", tt.wantErr)
				}
				if errors.Is(err, connection.ErrNotFound) {
					t.Errorf("%s: an invalid id reads as not found: %v", op, err)
				}
			}
		})
	}
	if got := srv.Calls(); len(got) != 0 {
		t.Errorf("invalid ids reached Secrets Manager: %v", got)
	}

	t.Run("invalid prefix", func(t *testing.T) {
		bad := secretstore.New(srv.Client(), "my prefix")
		if _, err := bad.SecretName("42"); err == nil || !strings.Contains(err.Error(), `secret prefix "my prefix"`) {
			t.Errorf("SecretName with a bad prefix: %v, want an error naming the prefix", err)
		}
	})
}

// TestErrorsHideSecrets drives every failure path that has a secret at hand
// and checks that no error carries it.
func TestErrorsHideSecrets(t *testing.T) {
	st, srv, c := newStore(t)
	ctx := context.Background()
	if err := st.PutSecret(ctx, "42", secretWith("1")); err != nil {
		t.Fatal(err)
	}
	name := prefix + "/conversations/42"

	corrupt := func(value string) func() error {
		return func() error {
			if _, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(value)}); err != nil {
				t.Fatal(err)
			}
			_, err := st.GetSecret(ctx, "42")
			return err
		}
	}
	tests := []struct {
		name    string
		call    func() error
		wantErr string
	}{
		{"put fails", func() error {
			srv.SetFailNext("PutSecretValue", &secretsmanagertest.Error{Status: 400, Type: "EncryptionFailure", Message: "Secrets Manager can't encrypt the protected secret text using the provided KMS key."})
			return st.PutSecret(ctx, "42", secretWith("2"))
		}, "put secret for conversation 42: "},
		{"create fails", func() error {
			srv.SetFailNext("CreateSecret", &secretsmanagertest.Error{Status: 400, Type: "AccessDeniedException", Message: "not authorized"})
			return st.PutSecret(ctx, "43", secretWith("2"))
		}, "put secret for conversation 43: "},
		{"get fails after retries", func() error {
			for range 3 {
				srv.SetFailNext("GetSecretValue", secretsmanagertest.InternalServiceError())
			}
			_, err := st.GetSecret(ctx, "42")
			return err
		}, "get secret for conversation 42: "},
		{"stored value is not JSON", corrupt(canary + " plain text"), "get secret for conversation 42: stored value is not valid JSON"},
		{"stored value has a wrong type", corrupt(`{"client_secret":{"x":"` + canary + `"}}`), `field "client_secret" is not a string`},
		{"stored expiry is not a time", corrupt(`{"client_secret":"` + canary + `","token":{"access_token":"` + canary + `","expiry":"` + canary + `"}}`), "stored value is not the expected JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("error leaks a secret value: %q", err)
			}
		})
	}
}
