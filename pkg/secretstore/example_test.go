package secretstore_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/secretsmanagertest"
	"github.com/ejplatform/ej-mautic/pkg/secretstore"
)

func ExampleStore() {
	// In Lambda the client comes from config.LoadDefaultConfig; here it is
	// the test server's.
	srv := secretsmanagertest.NewServer()
	defer srv.Close()
	store := secretstore.New(srv.Client(), "ej-mautic/prod")
	ctx := context.Background()

	name, _ := store.SecretName("42")
	fmt.Println(name)

	err := store.PutSecret(ctx, "42", connection.Secret{
		ClientSecret: "client-secret",
		Token: &oauth2.Token{
			AccessToken:  "access",
			RefreshToken: "refresh",
			Expiry:       time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC),
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	sec, err := store.GetSecret(ctx, "42")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sec.Token.RefreshToken, sec.Token.Expiry)

	if err := store.DeleteSecret(ctx, "42"); err != nil {
		fmt.Println(err)
		return
	}
	_, err = store.GetSecret(ctx, "42")
	fmt.Println(errors.Is(err, connection.ErrNotFound))
	fmt.Println("reads:", store.Reads())
	// Output:
	// ej-mautic/prod/conversations/42
	// refresh 2026-11-26 13:00:00 +0000 UTC
	// true
	// reads: 2
}

func ExampleLoadAppSecret() {
	srv := secretsmanagertest.NewServer()
	defer srv.Close()
	client := srv.Client()
	ctx := context.Background()

	// What CloudFormation's GenerateSecretString makes from the template in
	// the package documentation.
	out, err := client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("ej-mautic/app"),
		SecretString: aws.String(`{"api_keys":"Zq3v8XcT1bN6mK2pR9sW4yH7jL0dF5gA8eU3iO6tQ1wE9rY2"}`),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	app, err := secretstore.LoadAppSecret(ctx, client, aws.ToString(out.ARN))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(app.APIKeys), "API key;", len(app.LinkKey), "byte link key (derived)")
	// Output:
	// 1 API key; 32 byte link key (derived)
}
