package deploy

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/testbackend"
)

// workDir holds the test binary's builds; TestMain creates and removes it.
var workDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ejm-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = dir
	code := testbackend.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// lambdaFunc is one Lambda function of the template.
type lambdaFunc struct {
	id       string          // logical id in template.yaml
	dir      string          // ./functions/<dir>
	required config.Required // what its main passes to awsapp.Load
}

// functions are the five functions, in the template's order.
var functions = []lambdaFunc{
	{"ConnectionsFunction", "connections", config.ForConnections},
	{"AuthorizeFunction", "authorize", config.ForAuthorize},
	{"CallbackFunction", "callback", config.ForCallback},
	{"VotesFunction", "votes", config.ForVotes},
	{"KeepaliveFunction", "keepalive", config.ForKeepalive},
}

// repoRoot is the module's root directory (the tests run in pkg/deploy).
func repoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		tb.Fatalf("module root not found from %s: %v", root, err)
	}
	return root
}

// builds are the test binary's bootstrap builds, each made once: arm64
// through the Makefile's build-<LogicalId> targets (what sam build runs),
// amd64 with the same flags for aws-lambda-rie on this machine.
var builds = struct {
	arm64, amd64 func() (map[string]string, error) // function dir → bootstrap path
}{
	arm64: sync.OnceValues(func() (map[string]string, error) { return buildArm64() }),
	amd64: sync.OnceValues(func() (map[string]string, error) { return buildAmd64() }),
}

// buildArm64 runs make build-<LogicalId> ARTIFACTS_DIR=… for each function.
func buildArm64() (map[string]string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, f := range functions {
		dir := filepath.Join(workDir, "arm64", f.dir)
		cmd := exec.Command("make", "--no-print-directory", "-s", "build-"+f.id, "ARTIFACTS_DIR="+dir)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return out, fmt.Errorf("make build-%s: %w\n%s", f.id, err, b)
		}
		out[f.dir] = filepath.Join(dir, "bootstrap")
	}
	return out, nil
}

// buildAmd64 builds the five functions for linux/amd64 in one go build.
func buildAmd64() (map[string]string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(workDir, "amd64")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	args := []string{"build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", dir + string(filepath.Separator)}
	for _, f := range functions {
		args = append(args, "./functions/"+f.dir)
	}
	cmd := exec.Command("go", args...) // the go command puts its own first on PATH
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go %v: %w\n%s", args, err, b)
	}
	out := map[string]string{}
	for _, f := range functions {
		out[f.dir] = filepath.Join(dir, f.dir)
	}
	return out, nil
}

// checkBootstrap checks that path is a static linux ELF executable for
// machine and returns its size.
func checkBootstrap(path string, machine elf.Machine) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	f, err := elf.Open(path)
	if err != nil {
		return 0, fmt.Errorf("%s is not an ELF file: %w", path, err)
	}
	defer f.Close()
	if f.Machine != machine {
		return 0, fmt.Errorf("%s is built for %v, want %v", path, f.Machine, machine)
	}
	if f.Type != elf.ET_EXEC {
		return 0, fmt.Errorf("%s is ELF type %v, want an executable (ET_EXEC)", path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return 0, fmt.Errorf("%s asks for a dynamic loader: not statically linked (CGO_ENABLED=0?)", path)
		}
	}
	if f.Section(".symtab") != nil {
		return 0, fmt.Errorf("%s has a symbol table: not stripped (-ldflags \"-s -w\"?)", path)
	}
	// lambda.norpc drops the net/rpc handler that provided.al2023 never
	// uses.
	if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte("net/rpc.(*Server)")) {
		return 0, fmt.Errorf("%s links net/rpc: built without -tags lambda.norpc", path)
	}
	return st.Size(), nil
}
