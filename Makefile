# ej-mautic — see README.md.
GO        ?= go
GOFLAGS   ?=
DATA_DIR  ?= .ejmautic
ADDR      ?= 127.0.0.1:8080
SIM_ADDR  ?= 127.0.0.1:8300
# function directory:template logical id, for make build.
LAMBDAS := connections:ConnectionsFunction authorize:AuthorizeFunction callback:CallbackFunction \
           votes:VotesFunction keepalive:KeepaliveFunction

.PHONY: run test test-unit bench build lint tools demo chaos fuzz fuzz-smoke clean \
	build-ConnectionsFunction build-AuthorizeFunction build-CallbackFunction build-VotesFunction build-KeepaliveFunction

## run: the whole thing locally, on embedded storage, with a simulated Mautic.
run:
	$(GO) run ./cmd/ejmautic serve --addr $(ADDR) --data-dir $(DATA_DIR) --mautic-sim $(SIM_ADDR)

## test: every test, with the real backends (installed on first use).
test: lint
	@set -e; eval "$$(./.ci/tools.sh)"; \
	$(GO) test -count=1 -timeout 30m ./...
	@$(MAKE) --no-print-directory fuzz-smoke

## test-unit: the tests that need no installed backend (they skip the rest).
test-unit:
	$(GO) test ./...

## bench: the AWS-protocol and RIE measurements, the Go benchmarks, then
## ejmautic bench's summary table (reports in a temporary EJM_REPORT_DIR,
## where ejmautic bench also writes bench.json; BENCH_FLAGS=--all runs
## every workload, --w2/--w4/--w5/--w6 one more; BENCH_JSON=path keeps a
## copy of bench.json). See docs/benchmarks.md.
bench:
	@set -e; dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; failed=""; \
	eval "$$(./.ci/tools.sh)"; \
	echo "== 1/3 AWS-protocol and aws-lambda-rie measurements (EJM_REPORT_DIR=$$dir)"; \
	for p in ./pkg/votes/ ./pkg/deploy/; do \
	  if [ ! -d "$$p" ]; then echo "note: $$p does not exist yet: skipped"; continue; fi; \
	  if ! $(GO) test -list 'TestWholePathOverHTTP|TestRIE' "$$p" | grep -qE '^Test(WholePathOverHTTP|RIE)'; then \
	    echo "note: $$p has no TestWholePathOverHTTP or TestRIE yet: skipped"; continue; fi; \
	  EJM_REPORT_DIR=$$dir $(GO) test -count=1 -timeout 5m -run 'TestWholePathOverHTTP|TestRIE' "$$p" || failed="$$failed $$p"; \
	done; \
	for f in aws.json rie.json; do [ -f "$$dir/$$f" ] || echo "note: no $$f was written: its figures will read n/a"; done; \
	echo "== 2/3 Go benchmarks"; \
	{ $(GO) test -run '^$$' -bench . -benchmem -timeout 10m ./pkg/... || echo "FAIL go benchmarks"; } 2>&1 | tee "$$dir/gobench.txt"; \
	if grep -q '^FAIL' "$$dir/gobench.txt"; then failed="$$failed go-benchmarks"; fi; \
	echo "== 3/3 ejmautic bench $(BENCH_FLAGS)"; \
	$(GO) build -o "$$dir/ejmautic" ./cmd/ejmautic; \
	EJM_REPORT_DIR=$$dir "$$dir/ejmautic" bench $(BENCH_FLAGS) || failed="$$failed ejmautic-bench"; \
	if [ -n "$(BENCH_JSON)" ] && [ -f "$$dir/bench.json" ]; then cp "$$dir/bench.json" "$(BENCH_JSON)"; echo "bench.json copied to $(BENCH_JSON)"; fi; \
	if [ -n "$$failed" ]; then echo "make bench: failed:$$failed"; exit 1; fi

## chaos: the full-size chaos run (10,000 votes, 4 consumer processes,
## faults, token expiry and revocation, a SIGKILL); make test runs a
## reduced one. Prints the table of what was injected and what survived.
chaos:
	@set -e; eval "$$(./.ci/tools.sh)"; \
	EJM_CHAOS=full $(GO) test -count=1 -timeout 30m -v -run '^TestChaos$$' ./pkg/chaos/

## fuzz: every fuzz target (func FuzzX in a _test.go file) for FUZZTIME each.
FUZZTIME ?= 5s
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' pkg cmd functions 2>/dev/null | sort); do \
	  for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "fuzz $$name ./$$(dirname $$f) ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz '^'"$$name"'$$' -fuzztime $(FUZZTIME) ./$$(dirname $$f)/; \
	  done; \
	done

## fuzz-smoke: the short fuzz run make test ends with (5 s per target).
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=5s

## demo: the whole path end to end on a fresh data dir.
demo:
	$(GO) run ./cmd/ejmautic demo

## build: the five arm64 Lambda bootstraps into build/<function>/bootstrap,
## through the same build-<LogicalId> targets sam build runs; prints sizes.
build:
	@set -e; for fl in $(LAMBDAS); do \
	  f=$${fl%%:*}; id=$${fl#*:}; \
	  echo "build $$f ($$id)"; \
	  $(MAKE) --no-print-directory -s build-$$id ARTIFACTS_DIR="$(CURDIR)/build/$$f"; \
	done; \
	for fl in $(LAMBDAS); do \
	  f=$${fl%%:*}; printf '%-12s %9d bytes  build/%s/bootstrap\n' "$$f" "$$(wc -c < build/$$f/bootstrap)" "$$f"; \
	done

# sam build (template.yaml, Metadata: BuildMethod: makefile) runs these with
# ARTIFACTS_DIR set; pkg/deploy checks that each exists and builds.
build-ConnectionsFunction:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags "-s -w" -o $(ARTIFACTS_DIR)/bootstrap ./functions/connections

build-AuthorizeFunction:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags "-s -w" -o $(ARTIFACTS_DIR)/bootstrap ./functions/authorize

build-CallbackFunction:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags "-s -w" -o $(ARTIFACTS_DIR)/bootstrap ./functions/callback

build-VotesFunction:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags "-s -w" -o $(ARTIFACTS_DIR)/bootstrap ./functions/votes

build-KeepaliveFunction:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags "-s -w" -o $(ARTIFACTS_DIR)/bootstrap ./functions/keepalive

## lint: gofmt, go mod tidy, go vet, staticcheck.
lint:
	$(GO) mod tidy -diff
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './build/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needs to run on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

tools:
	./.ci/tools.sh

clean:
	rm -rf build
