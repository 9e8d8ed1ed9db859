// Package deploy checks the SAM template and the Lambda bootstraps.
//
// It holds tests only. They read template.yaml with goformation (and, where
// goformation does not decode what SAM accepts, the raw YAML) and check each
// promise the template makes: build targets, environment, queue settings,
// least-privilege IAM, storage, outputs. They build every bootstrap for
// arm64 (through the Makefile's build-<LogicalId> targets, as sam build does)
// and amd64, and run the amd64 ones under the AWS Lambda Runtime Interface
// Emulator (aws-lambda-rie) with the events in events/, against the
// simulated Mautic, DynamoDB Local, fauxqs and the Secrets Manager test
// server.
//
// The RIE test reads EJM_LAMBDA_RIE (set by .ci/tools.sh); without it the
// test is skipped, or fails under EJM_REQUIRE_BACKENDS. With EJM_REPORT_DIR
// set it writes the bootstraps' sizes and init times to rie.json there, for
// make bench.
package deploy
