package awsapp

import (
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// lambdaConfig builds the SDK configuration from the environment Lambda
// gives every function: AWS_REGION and the execution role's
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. It
// replaces config.LoadDefaultConfig, whose shared-file, SSO, STS and IMDS
// providers a function never uses but would link (about 2 MB of bootstrap
// and work at cold start).
func lambdaConfig(getenv func(string) string) (aws.Config, error) {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	var missing []string
	if region == "" {
		missing = append(missing, "AWS_REGION")
	}
	if id == "" || secret == "" {
		missing = append(missing, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	if len(missing) > 0 {
		return aws.Config{}, errors.New("aws: " + strings.Join(missing, ", ") + " not set (Lambda sets them)")
	}
	return aws.Config{
		Region:      region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN"))),
	}, nil
}

// endpoint is the SDK's service-specific endpoint override
// AWS_ENDPOINT_URL_<SERVICE> (or AWS_ENDPOINT_URL), as LoadDefaultConfig
// would read it: tests point the functions at local backends with it.
func endpoint(getenv func(string) string, service string) *string {
	if v := getenv("AWS_ENDPOINT_URL_" + service); v != "" {
		return &v
	}
	if v := getenv("AWS_ENDPOINT_URL"); v != "" {
		return &v
	}
	return nil
}
