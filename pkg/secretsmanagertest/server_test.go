package secretsmanagertest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/ejplatform/ej-mautic/pkg/secretsmanagertest"
)

func newServer(t *testing.T) (*secretsmanagertest.Server, *secretsmanager.Client) {
	t.Helper()
	srv := secretsmanagertest.NewServer()
	t.Cleanup(srv.Close)
	return srv, srv.Client()
}

// wantAPIError fails unless err is the service error code with message msg
// (msg "" matches any message).
func wantAPIError(t *testing.T, err error, code, msg string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error = %v, want %s", err, code)
	}
	if got := apiErr.ErrorCode(); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
	if got := apiErr.ErrorMessage(); msg != "" && got != msg {
		t.Fatalf("error message = %q, want %q", got, msg)
	}
}

const (
	msgNotFound      = "Secrets Manager can't find the specified secret."
	msgMarkedDeleted = "You can't perform this operation on the secret because it was marked for deletion."
)

func create(t *testing.T, c *secretsmanager.Client, name, value string) *secretsmanager.CreateSecretOutput {
	t.Helper()
	out, err := c.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(value),
	})
	if err != nil {
		t.Fatalf("CreateSecret %s: %v", name, err)
	}
	return out
}

func get(t *testing.T, c *secretsmanager.Client, in *secretsmanager.GetSecretValueInput) *secretsmanager.GetSecretValueOutput {
	t.Helper()
	out, err := c.GetSecretValue(context.Background(), in)
	if err != nil {
		t.Fatalf("GetSecretValue %s: %v", aws.ToString(in.SecretId), err)
	}
	return out
}

func put(t *testing.T, c *secretsmanager.Client, id, value string) *secretsmanager.PutSecretValueOutput {
	t.Helper()
	out, err := c.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(id), SecretString: aws.String(value),
	})
	if err != nil {
		t.Fatalf("PutSecretValue %s: %v", id, err)
	}
	return out
}

func TestCreateAndGet(t *testing.T) {
	_, c := newServer(t)
	ctx := context.Background()

	created := create(t, c, "app/conversations/42", `{"client_secret":"s3cr3t"}`)
	arnRE := regexp.MustCompile(`^arn:aws:secretsmanager:us-east-1:123456789012:secret:app/conversations/42-[A-Za-z0-9]{6}$`)
	if !arnRE.MatchString(aws.ToString(created.ARN)) {
		t.Errorf("ARN = %q, want it to match %s", aws.ToString(created.ARN), arnRE)
	}
	if got, want := aws.ToString(created.Name), "app/conversations/42"; got != want {
		t.Errorf("Name = %q, want %q", got, want)
	}
	if aws.ToString(created.VersionId) == "" {
		t.Error("VersionId is empty")
	}

	partialARN := strings.TrimSuffix(aws.ToString(created.ARN), aws.ToString(created.ARN)[len(aws.ToString(created.ARN))-7:])
	for _, id := range []string{"app/conversations/42", aws.ToString(created.ARN), partialARN} {
		t.Run(id, func(t *testing.T) {
			out := get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
			if got, want := aws.ToString(out.SecretString), `{"client_secret":"s3cr3t"}`; got != want {
				t.Errorf("SecretString = %q, want %q", got, want)
			}
			if got, want := aws.ToString(out.VersionId), aws.ToString(created.VersionId); got != want {
				t.Errorf("VersionId = %q, want %q", got, want)
			}
			if got, want := out.VersionStages, []string{"AWSCURRENT"}; !slices.Equal(got, want) {
				t.Errorf("VersionStages = %q, want %q", got, want)
			}
			if got, want := aws.ToString(out.ARN), aws.ToString(created.ARN); got != want {
				t.Errorf("ARN = %q, want %q", got, want)
			}
			if out.CreatedDate == nil || time.Since(*out.CreatedDate) > time.Minute {
				t.Errorf("CreatedDate = %v, want about now", out.CreatedDate)
			}
		})
	}

	t.Run("binary", func(t *testing.T) {
		bin := []byte{0, 1, 2, 0xff}
		if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bin"), SecretBinary: bin}); err != nil {
			t.Fatal(err)
		}
		out := get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("bin")})
		if !slices.Equal(out.SecretBinary, bin) || out.SecretString != nil {
			t.Errorf("got SecretBinary %v, SecretString %v; want %v and nil", out.SecretBinary, out.SecretString, bin)
		}
	})

	t.Run("exists", func(t *testing.T) {
		_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/conversations/42"), SecretString: aws.String("x")})
		var exists *types.ResourceExistsException
		if !errors.As(err, &exists) {
			t.Fatalf("error = %v, want *types.ResourceExistsException", err)
		}
		wantAPIError(t, err, "ResourceExistsException", "The operation failed because the secret app/conversations/42 already exists.")
	})

	t.Run("retried create is answered as before", func(t *testing.T) {
		token := "0123456789abcdef0123456789abcdef"
		in := &secretsmanager.CreateSecretInput{Name: aws.String("retried"), SecretString: aws.String("v"), ClientRequestToken: aws.String(token)}
		first, err := c.CreateSecret(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		again, err := c.CreateSecret(ctx, in)
		if err != nil {
			t.Fatalf("second CreateSecret with the same token: %v", err)
		}
		if aws.ToString(again.ARN) != aws.ToString(first.ARN) || aws.ToString(again.VersionId) != token {
			t.Errorf("retry answered %q/%q, want %q/%q", aws.ToString(again.ARN), aws.ToString(again.VersionId), aws.ToString(first.ARN), token)
		}
	})
}

func TestVersionStages(t *testing.T) {
	_, c := newServer(t)
	ctx := context.Background()
	const name = "staged"

	v1 := aws.ToString(create(t, c, name, "one").VersionId)
	v2 := aws.ToString(put(t, c, name, "two").VersionId)
	out3 := put(t, c, name, "three")
	v3 := aws.ToString(out3.VersionId)
	if got, want := out3.VersionStages, []string{"AWSCURRENT"}; !slices.Equal(got, want) {
		t.Errorf("PutSecretValue VersionStages = %q, want %q", got, want)
	}
	if v1 == v2 || v2 == v3 {
		t.Fatalf("version ids repeat: %s %s %s", v1, v2, v3)
	}

	tests := []struct {
		name       string
		in         secretsmanager.GetSecretValueInput
		wantValue  string
		wantStages []string
	}{
		{"default is AWSCURRENT", secretsmanager.GetSecretValueInput{}, "three", []string{"AWSCURRENT"}},
		{"AWSCURRENT", secretsmanager.GetSecretValueInput{VersionStage: aws.String("AWSCURRENT")}, "three", []string{"AWSCURRENT"}},
		{"AWSPREVIOUS", secretsmanager.GetSecretValueInput{VersionStage: aws.String("AWSPREVIOUS")}, "two", []string{"AWSPREVIOUS"}},
		{"oldest by version id", secretsmanager.GetSecretValueInput{VersionId: aws.String(v1)}, "one", nil},
		{"version id and its stage", secretsmanager.GetSecretValueInput{VersionId: aws.String(v2), VersionStage: aws.String("AWSPREVIOUS")}, "two", []string{"AWSPREVIOUS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.SecretId = aws.String(name)
			out := get(t, c, &in)
			if got := aws.ToString(out.SecretString); got != tt.wantValue {
				t.Errorf("SecretString = %q, want %q", got, tt.wantValue)
			}
			if !slices.Equal(out.VersionStages, tt.wantStages) {
				t.Errorf("VersionStages = %q, want %q", out.VersionStages, tt.wantStages)
			}
		})
	}

	notFound := []struct {
		name string
		in   secretsmanager.GetSecretValueInput
		msg  string
	}{
		{"unknown stage", secretsmanager.GetSecretValueInput{VersionStage: aws.String("AWSPENDING")}, "Secrets Manager can't find the specified secret value for staging label: AWSPENDING"},
		{"unknown version", secretsmanager.GetSecretValueInput{VersionId: aws.String("00000000-0000-4000-8000-000000000000")}, "Secrets Manager can't find the specified secret value for VersionId: 00000000-0000-4000-8000-000000000000"},
		{"version without that stage", secretsmanager.GetSecretValueInput{VersionId: aws.String(v1), VersionStage: aws.String("AWSCURRENT")}, "Secrets Manager can't find the specified secret value for VersionId: " + v1},
	}
	for _, tt := range notFound {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.SecretId = aws.String(name)
			_, err := c.GetSecretValue(ctx, &in)
			wantAPIError(t, err, "ResourceNotFoundException", tt.msg)
		})
	}

	t.Run("describe", func(t *testing.T) {
		d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{v2: {"AWSPREVIOUS"}, v3: {"AWSCURRENT"}}
		if len(d.VersionIdsToStages) != len(want) {
			t.Fatalf("VersionIdsToStages = %v, want %v", d.VersionIdsToStages, want)
		}
		for id, stages := range want {
			if !slices.Equal(d.VersionIdsToStages[id], stages) {
				t.Errorf("VersionIdsToStages[%s] = %q, want %q", id, d.VersionIdsToStages[id], stages)
			}
		}
		if d.LastAccessedDate == nil {
			t.Error("LastAccessedDate is nil after GetSecretValue")
		}
		if d.DeletedDate != nil {
			t.Errorf("DeletedDate = %v, want nil", d.DeletedDate)
		}
	})

	t.Run("versions without labels are pruned past 100", func(t *testing.T) {
		for i := range 120 {
			put(t, c, name, fmt.Sprint("v", i))
		}
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionId: aws.String(v1)})
		wantAPIError(t, err, "ResourceNotFoundException", "")
		if got := aws.ToString(get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)}).SecretString); got != "v119" {
			t.Errorf("current = %q, want v119", got)
		}
	})
}

func TestPutSecretValueToken(t *testing.T) {
	_, c := newServer(t)
	ctx := context.Background()
	create(t, c, "tok", "one")
	token := "11111111-2222-4333-8444-555555555555"
	in := &secretsmanager.PutSecretValueInput{SecretId: aws.String("tok"), SecretString: aws.String("two"), ClientRequestToken: aws.String(token)}

	first, err := c.PutSecretValue(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(first.VersionId); got != token {
		t.Errorf("VersionId = %q, want the token %q", got, token)
	}
	if _, err := c.PutSecretValue(ctx, in); err != nil {
		t.Fatalf("repeating the request: %v", err)
	}
	// The repeat made no new version: AWSPREVIOUS is still "one".
	prev := get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("tok"), VersionStage: aws.String("AWSPREVIOUS")})
	if got := aws.ToString(prev.SecretString); got != "one" {
		t.Errorf("AWSPREVIOUS = %q after a repeated request, want %q", got, "one")
	}

	in.SecretString = aws.String("different")
	_, err = c.PutSecretValue(ctx, in)
	wantAPIError(t, err, "ResourceExistsException", "You can't modify an existing version, you can only create a new version.")
}

func TestNotFound(t *testing.T) {
	_, c := newServer(t)
	ctx := context.Background()
	id := aws.String("nope")

	calls := map[string]func() error{
		"GetSecretValue": func() error {
			_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: id})
			return err
		},
		"PutSecretValue": func() error {
			_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: id, SecretString: aws.String("x")})
			return err
		},
		"DescribeSecret": func() error {
			_, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: id})
			return err
		},
		"UpdateSecret": func() error {
			_, err := c.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: id, Description: aws.String("d")})
			return err
		},
		"RestoreSecret": func() error {
			_, err := c.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: id})
			return err
		},
		"DeleteSecret with a recovery window": func() error {
			_, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: id})
			return err
		},
		"GetSecretValue by unknown ARN": func() error {
			_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-abcdef")})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			var nf *types.ResourceNotFoundException
			if !errors.As(err, &nf) {
				t.Fatalf("error = %v, want *types.ResourceNotFoundException", err)
			}
			wantAPIError(t, err, "ResourceNotFoundException", msgNotFound)
		})
	}

	t.Run("secret without a value", func(t *testing.T) {
		if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("empty")}); err != nil {
			t.Fatal(err)
		}
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("empty")})
		wantAPIError(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT")
	})
}

func TestDeletion(t *testing.T) {
	_, c := newServer(t)
	ctx := context.Background()
	const name = "doomed"
	create(t, c, name, "value")

	del, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), RecoveryWindowInDays: aws.Int64(7)})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(aws.ToTime(del.DeletionDate)); d < 6*24*time.Hour || d > 8*24*time.Hour {
		t.Errorf("DeletionDate is %v away, want 7 days", d)
	}

	t.Run("scheduled secret refuses use", func(t *testing.T) {
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
		var ir *types.InvalidRequestException
		if !errors.As(err, &ir) {
			t.Fatalf("GetSecretValue error = %v, want *types.InvalidRequestException", err)
		}
		wantAPIError(t, err, "InvalidRequestException", msgMarkedDeleted)

		_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String("x")})
		wantAPIError(t, err, "InvalidRequestException", msgMarkedDeleted)

		_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("x")})
		wantAPIError(t, err, "InvalidRequestException", "You can't create this secret because a secret with this name is already scheduled for deletion.")

		_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name)})
		wantAPIError(t, err, "InvalidRequestException", msgMarkedDeleted)
	})

	t.Run("scheduled secret can be described and listed on request", func(t *testing.T) {
		d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		if d.DeletedDate == nil {
			t.Error("DeletedDate is nil for a secret scheduled for deletion")
		}
		l, err := c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.SecretList) != 0 {
			t.Errorf("ListSecrets listed %d secrets, want none (the only one is scheduled for deletion)", len(l.SecretList))
		}
		l, err = c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{IncludePlannedDeletion: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.SecretList) != 1 {
			t.Errorf("ListSecrets with IncludePlannedDeletion listed %d secrets, want 1", len(l.SecretList))
		}
	})

	t.Run("restore", func(t *testing.T) {
		if _, err := c.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)}).SecretString); got != "value" {
			t.Errorf("restored value = %q, want %q", got, "value")
		}
	})

	t.Run("force delete, also after scheduling", func(t *testing.T) {
		if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
		wantAPIError(t, err, "ResourceNotFoundException", msgNotFound)
		_, err = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		wantAPIError(t, err, "ResourceNotFoundException", msgNotFound)
		create(t, c, name, "reborn")
	})

	t.Run("force deleting a missing secret succeeds", func(t *testing.T) {
		out, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("never-was"), ForceDeleteWithoutRecovery: aws.Bool(true)})
		if err != nil {
			t.Fatalf("error = %v, want none", err)
		}
		if got := aws.ToString(out.Name); got != "never-was" {
			t.Errorf("Name = %q, want %q", got, "never-was")
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		_, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), ForceDeleteWithoutRecovery: aws.Bool(true), RecoveryWindowInDays: aws.Int64(7)})
		wantAPIError(t, err, "InvalidParameterException", "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
		for _, days := range []int64{0, 6, 31} {
			_, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), RecoveryWindowInDays: aws.Int64(days)})
			wantAPIError(t, err, "InvalidParameterException", "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
		}
		// Nothing was deleted.
		get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	})
}

func TestForceDeleteDelay(t *testing.T) {
	srv, c := newServer(t)
	ctx := context.Background()
	srv.SetForceDeleteDelay(30 * time.Millisecond)
	create(t, c, "lagging", "v")

	if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("lagging"), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("lagging"), SecretString: aws.String("v2")})
	wantAPIError(t, err, "InvalidRequestException", "You can't create this secret because a secret with this name is already scheduled for deletion.")
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("lagging")})
	wantAPIError(t, err, "InvalidRequestException", msgMarkedDeleted)
	_, err = c.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String("lagging")})
	wantAPIError(t, err, "InvalidRequestException", "You can't perform this operation on the secret because it was deleted.")

	// Once the deletion has gone through, the name is free.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("lagging"), SecretString: aws.String("v2")})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CreateSecret still failing after the force-delete delay: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestValidation(t *testing.T) {
	_, c := newServer(t)
	ctx := context.Background()
	create(t, c, "ok", "v")

	tests := []struct {
		name string
		call func() error
		code string
		msg  string
	}{
		{"name with a space", func() error {
			_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("a b"), SecretString: aws.String("v")})
			return err
		}, "InvalidParameterException", "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"},
		{"name with non-ASCII", func() error {
			_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("conversação"), SecretString: aws.String("v")})
			return err
		}, "InvalidParameterException", ""},
		{"name too long", func() error {
			_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(strings.Repeat("a", 513)), SecretString: aws.String("v")})
			return err
		}, "ValidationException", "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length less than or equal to 512"},
		{"both values", func() error {
			_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("ok"), SecretString: aws.String("v"), SecretBinary: []byte("v")})
			return err
		}, "InvalidParameterException", "You can't specify both a binary secret value and a string secret value in the same secret."},
		{"no value", func() error {
			_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("ok")})
			return err
		}, "InvalidRequestException", "You must provide either SecretString or SecretBinary."},
		{"value too long", func() error {
			_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("ok"), SecretString: aws.String(strings.Repeat("x", 65537))})
			return err
		}, "ValidationException", "1 validation error detected: Value at 'secretString' failed to satisfy constraint: Member must have length less than or equal to 65536"},
		{"short token", func() error {
			_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("ok"), SecretString: aws.String("v"), ClientRequestToken: aws.String("short")})
			return err
		}, "ValidationException", ""},
		{"empty secret id", func() error {
			_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("")})
			return err
		}, "ValidationException", ""},
		{"list page too big", func() error {
			_, err := c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(101)})
			return err
		}, "ValidationException", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantAPIError(t, tt.call(), tt.code, tt.msg)
		})
	}
	if got := aws.ToString(get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("ok")}).SecretString); got != "v" {
		t.Errorf("after rejected requests the value is %q, want %q", got, "v")
	}
}

func TestUpdateAndList(t *testing.T) {
	_, c := newServer(t)
	ctx := context.Background()
	for _, n := range []string{"p/a", "p/b", "p/c", "q/a"} {
		create(t, c, n, "v-"+n)
	}

	up, err := c.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("p/a"), SecretString: aws.String("new"), Description: aws.String("desc")})
	if err != nil {
		t.Fatal(err)
	}
	if up.VersionId == nil {
		t.Error("UpdateSecret with a value returned no VersionId")
	}
	if got := aws.ToString(get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("p/a"), VersionStage: aws.String("AWSPREVIOUS")}).SecretString); got != "v-p/a" {
		t.Errorf("AWSPREVIOUS after UpdateSecret = %q, want %q", got, "v-p/a")
	}
	d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("p/a")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(d.Description); got != "desc" {
		t.Errorf("Description = %q, want %q", got, "desc")
	}

	var names []string
	in := &secretsmanager.ListSecretsInput{
		MaxResults: aws.Int32(2),
		Filters:    []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"p/"}}},
	}
	for p := secretsmanager.NewListSecretsPaginator(c, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.SecretList) > 2 {
			t.Errorf("page of %d, want at most 2", len(page.SecretList))
		}
		for _, s := range page.SecretList {
			names = append(names, aws.ToString(s.Name))
			if len(s.SecretVersionsToStages) == 0 {
				t.Errorf("%s: SecretVersionsToStages is empty", aws.ToString(s.Name))
			}
		}
	}
	slices.Sort(names)
	if want := []string{"p/a", "p/b", "p/c"}; !slices.Equal(names, want) {
		t.Errorf("listed %q, want %q", names, want)
	}
}

func TestCallsAndFailNext(t *testing.T) {
	srv, c := newServer(t)
	ctx := context.Background()
	create(t, c, "counted", "v")
	get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("counted")})
	get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("counted")})

	if got, want := srv.Calls(), map[string]int{"CreateSecret": 1, "GetSecretValue": 2}; !mapsEqual(got, want) {
		t.Errorf("Calls() = %v, want %v", got, want)
	}
	srv.ResetCalls()
	if got := srv.Calls(); len(got) != 0 {
		t.Errorf("Calls() after ResetCalls = %v, want empty", got)
	}

	t.Run("a retried failure", func(t *testing.T) {
		srv.ResetCalls()
		srv.SetFailNext("GetSecretValue", secretsmanagertest.InternalServiceError())
		out := get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("counted")})
		if got := aws.ToString(out.SecretString); got != "v" {
			t.Errorf("SecretString = %q, want %q", got, "v")
		}
		if got := srv.Calls()["GetSecretValue"]; got != 2 {
			t.Errorf("GetSecretValue calls = %d, want 2 (one failure, one retry)", got)
		}
	})

	t.Run("failures beyond the retries", func(t *testing.T) {
		srv.ResetCalls()
		for range 3 {
			srv.SetFailNext("GetSecretValue", secretsmanagertest.ThrottlingException())
		}
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("counted")})
		wantAPIError(t, err, "ThrottlingException", "Rate exceeded")
		if got := srv.Calls()["GetSecretValue"]; got != 3 {
			t.Errorf("GetSecretValue calls = %d, want 3 (the client's attempts)", got)
		}
		// The queue is used up; the next call succeeds.
		get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("counted")})
	})

	t.Run("an injected client error is not retried", func(t *testing.T) {
		srv.ResetCalls()
		srv.SetFailNext("PutSecretValue", &secretsmanagertest.Error{Status: 400, Type: "EncryptionFailure", Message: "Secrets Manager can't encrypt the protected secret text using the provided KMS key."})
		_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("counted"), SecretString: aws.String("w")})
		var ef *types.EncryptionFailure
		if !errors.As(err, &ef) {
			t.Fatalf("error = %v, want *types.EncryptionFailure", err)
		}
		if got := srv.Calls()["PutSecretValue"]; got != 1 {
			t.Errorf("PutSecretValue calls = %d, want 1", got)
		}
		// The failed request changed nothing.
		if got := aws.ToString(get(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("counted")}).SecretString); got != "v" {
			t.Errorf("value = %q, want %q", got, "v")
		}
	})
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestWire checks the protocol itself, below the SDK.
func TestWire(t *testing.T) {
	srv, _ := newServer(t)

	post := func(t *testing.T, target, auth, body string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		if target != "" {
			req.Header.Set("X-Amz-Target", target)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, string(b)
	}
	const auth = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=00"

	tests := []struct {
		name, target, auth, body string
		wantStatus               int
		wantBody                 string
	}{
		{"not found", "secretsmanager.GetSecretValue", auth, `{"SecretId":"missing"}`, 400,
			`{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}`},
		{"unknown operation", "secretsmanager.RotateSecret", auth, `{}`, 400,
			`{"__type":"UnknownOperationException","message":"Unknown operation secretsmanager.RotateSecret"}`},
		{"other service", "DynamoDB_20120810.GetItem", auth, `{}`, 400,
			`{"__type":"UnknownOperationException","message":"Unknown operation DynamoDB_20120810.GetItem"}`},
		{"unsigned", "secretsmanager.GetSecretValue", "", `{"SecretId":"missing"}`, 400,
			`{"__type":"MissingAuthenticationTokenException","message":"Missing Authentication Token"}`},
		{"malformed JSON", "secretsmanager.GetSecretValue", auth, `{"SecretId":`, 400,
			`{"__type":"SerializationException","message":"The request body could not be read as the operation's JSON input."}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := post(t, tt.target, tt.auth, tt.body)
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d", status, tt.wantStatus)
			}
			if got, want := h.Get("Content-Type"), "application/x-amz-json-1.1"; got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
			if h.Get("X-Amzn-Requestid") == "" {
				t.Error("no x-amzn-RequestId header")
			}
			if body != tt.wantBody {
				t.Errorf("body = %s, want %s", body, tt.wantBody)
			}
		})
	}

	t.Run("timestamps are epoch seconds", func(t *testing.T) {
		status, _, body := post(t, "secretsmanager.CreateSecret", auth, `{"Name":"ts","SecretString":"v"}`)
		if status != 200 {
			t.Fatalf("CreateSecret status %d: %s", status, body)
		}
		_, _, body = post(t, "secretsmanager.GetSecretValue", auth, `{"SecretId":"ts"}`)
		var out map[string]any
		dec := json.NewDecoder(strings.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&out); err != nil {
			t.Fatal(err)
		}
		n, ok := out["CreatedDate"].(json.Number)
		if !ok {
			t.Fatalf("CreatedDate = %#v, want a JSON number", out["CreatedDate"])
		}
		f, _ := n.Float64()
		if d := time.Since(time.UnixMilli(int64(f * 1000))); d < 0 || d > time.Minute {
			t.Errorf("CreatedDate %s is %v from now", n, d)
		}
	})
}

// TestConcurrency runs many clients at once; run it with -race.
func TestConcurrency(t *testing.T) {
	srv, c := newServer(t)
	ctx := context.Background()
	const workers, rounds = 16, 20

	t.Run("one creator wins", func(t *testing.T) {
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			won     int
			existed int
		)
		for i := range workers {
			wg.Go(func() {
				_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("contended"), SecretString: aws.String(fmt.Sprint(i))})
				var exists *types.ResourceExistsException
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case errors.As(err, &exists):
					existed++
				default:
					t.Errorf("CreateSecret: %v", err)
				}
			})
		}
		wg.Wait()
		if won != 1 || existed != workers-1 {
			t.Errorf("%d creates succeeded and %d found it existing, want 1 and %d", won, existed, workers-1)
		}
	})

	t.Run("puts and gets", func(t *testing.T) {
		srv.ResetCalls()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				name := fmt.Sprint("worker/", w)
				if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("0")}); err != nil {
					t.Errorf("CreateSecret: %v", err)
					return
				}
				for r := 1; r <= rounds; r++ {
					if _, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(fmt.Sprint(r))}); err != nil {
						t.Errorf("PutSecretValue: %v", err)
						return
					}
					out, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
					if err != nil {
						t.Errorf("GetSecretValue: %v", err)
						return
					}
					if got, want := aws.ToString(out.SecretString), fmt.Sprint(r); got != want {
						t.Errorf("%s: read %q after writing %q", name, got, want)
					}
					// Concurrent puts to the shared secret move its labels.
					if _, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("contended"), SecretString: aws.String(name)}); err != nil {
						t.Errorf("PutSecretValue contended: %v", err)
					}
				}
			})
		}
		wg.Wait()
		if got, want := srv.Calls()["GetSecretValue"], workers*rounds; got != want {
			t.Errorf("GetSecretValue calls = %d, want %d", got, want)
		}
		d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("contended")})
		if err != nil {
			t.Fatal(err)
		}
		var current, previous int
		for _, stages := range d.VersionIdsToStages {
			for _, s := range stages {
				switch s {
				case "AWSCURRENT":
					current++
				case "AWSPREVIOUS":
					previous++
				}
			}
		}
		if current != 1 || previous != 1 {
			t.Errorf("after concurrent puts: %d AWSCURRENT and %d AWSPREVIOUS labels, want 1 and 1", current, previous)
		}
	})
}
