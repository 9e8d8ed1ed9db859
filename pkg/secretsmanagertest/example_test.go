package secretsmanagertest_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ejplatform/ej-mautic/pkg/secretsmanagertest"
)

func ExampleServer() {
	srv := secretsmanagertest.NewServer()
	defer srv.Close()
	client := srv.Client() // the real SDK client, pointed at srv.URL
	ctx := context.Background()

	if _, err := client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("demo/conversations/42"),
		SecretString: aws.String(`{"client_secret":"first"}`),
	}); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:     aws.String("demo/conversations/42"),
		SecretString: aws.String(`{"client_secret":"second"}`),
	}); err != nil {
		fmt.Println(err)
		return
	}
	for _, stage := range []string{"AWSCURRENT", "AWSPREVIOUS"} {
		out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
			SecretId:     aws.String("demo/conversations/42"),
			VersionStage: aws.String(stage),
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(stage, aws.ToString(out.SecretString))
	}

	_, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("demo/conversations/7")})
	fmt.Println(err != nil)
	fmt.Println("reads:", srv.Calls()["GetSecretValue"])
	// Output:
	// AWSCURRENT {"client_secret":"second"}
	// AWSPREVIOUS {"client_secret":"first"}
	// true
	// reads: 3
}
