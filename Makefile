# ej-mautic — see README.md.
GO        ?= go
GOFLAGS   ?=
DATA_DIR  ?= .ejmautic
ADDR      ?= 127.0.0.1:8080
SIM_ADDR  ?= 127.0.0.1:8300
FUNCTIONS := connections authorize callback votes keepalive
LAMBDA_BUILD = GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w"

.PHONY: run test test-unit bench build lint tools demo chaos clean

## run: the whole thing locally, on embedded storage, with a simulated Mautic.
run:
	$(GO) run ./cmd/ejmautic serve --addr $(ADDR) --data-dir $(DATA_DIR) --mautic-sim $(SIM_ADDR)

## test: every test, with the real backends (installed on first use).
test: lint
	@set -e; eval "$$(./.ci/tools.sh)"; \
	$(GO) test -count=1 -timeout 30m ./...

## test-unit: the tests that need no installed backend (they skip the rest).
test-unit:
	$(GO) test ./...

## bench: ejmautic bench plus the Go benchmarks.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...

## demo: the whole path end to end on a fresh data dir.
demo:
	$(GO) run ./cmd/ejmautic demo

## build: arm64 Lambda bootstraps into build/<function>/bootstrap.
build:
	@for f in $(FUNCTIONS); do \
	  if [ -d functions/$$f ]; then \
	    echo "build $$f"; $(LAMBDA_BUILD) -o build/$$f/bootstrap ./functions/$$f || exit 1; \
	  fi; \
	done
	@ls -l build/*/bootstrap

## lint: gofmt, go vet, staticcheck.
lint:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './build/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needs to run on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

tools:
	./.ci/tools.sh

clean:
	rm -rf build
