package deploy

import (
	"debug/elf"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/serverless"
	"github.com/awslabs/goformation/v7/intrinsics"
	"gopkg.in/yaml.v3"

	"github.com/ejplatform/ej-mautic/pkg/awsapp"
	"github.com/ejplatform/ej-mautic/pkg/config"
	"github.com/ejplatform/ej-mautic/pkg/httpapi"
	"github.com/ejplatform/ej-mautic/pkg/secretstore"
)

// samTemplate is template.yaml twice: typed by goformation, with every
// intrinsic function kept as a readable string ("!Ref Table",
// "!GetAtt VotesQueue.Arn", "!Sub arn:${AWS::Partition}:…") instead of
// being resolved (goformation resolves Ref and GetAtt to nothing), and as a
// raw YAML tree for what goformation does not read: Globals, which it does
// not merge into the functions, and an SQS event's FunctionResponseTypes,
// ScalingConfig and MaximumBatchingWindowInSeconds, which make it drop the
// whole event.
type samTemplate struct {
	cf  *cloudformation.Template
	raw *yaml.Node // the document's top-level mapping
}

func loadTemplate(t *testing.T) *samTemplate {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := goformation.ParseYAMLWithOptions(data, &intrinsics.ProcessorOptions{
		IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{
			"Ref":        renderRef,
			"Fn::GetAtt": renderGetAtt,
			"Fn::Sub":    renderSub,
			"Fn::If":     renderIf,
		},
	})
	if err != nil {
		t.Fatalf("goformation: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatal("template.yaml is not one YAML mapping")
	}
	return &samTemplate{cf: cf, raw: doc.Content[0]}
}

// renderRef keeps a Ref readable. A Number parameter resolves to its
// default, because the typed field it lands in takes no string.
func renderRef(_ string, in, tmpl any) any {
	name, _ := in.(string)
	if name == "AWS::NoValue" {
		return nil
	}
	if p, ok := dig(tmpl, "Parameters", name).(map[string]any); ok && p["Type"] == "Number" {
		return p["Default"]
	}
	return "!Ref " + name
}

func renderGetAtt(_ string, in, _ any) any {
	switch v := in.(type) {
	case string:
		return "!GetAtt " + v
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = fmt.Sprint(p)
		}
		return "!GetAtt " + strings.Join(parts, ".")
	}
	return nil
}

// renderSub keeps the template string; the variables of the two-argument
// form are put in place, in braces.
func renderSub(_ string, in, _ any) any {
	switch v := in.(type) {
	case string:
		return "!Sub " + v
	case []any:
		if len(v) != 2 {
			return nil
		}
		s, _ := v[0].(string)
		vars, _ := v[1].(map[string]any)
		for k, val := range vars {
			s = strings.ReplaceAll(s, "${"+k+"}", fmt.Sprintf("{%v}", val))
		}
		return "!Sub " + s
	}
	return nil
}

// renderIf shows both branches when they are strings, and takes the first
// one otherwise (so that a list stays a list for its typed field).
func renderIf(_ string, in, _ any) any {
	v, ok := in.([]any)
	if !ok || len(v) != 3 {
		return nil
	}
	a, aok := v[1].(string)
	b, bok := v[2].(string)
	if aok && bok {
		return fmt.Sprintf("!If %v ? %s : %s", v[0], a, b)
	}
	return v[1]
}

func dig(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// node walks the raw YAML by mapping keys; nil when a key is missing.
func node(n *yaml.Node, path ...string) *yaml.Node {
	for _, k := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}

// text renders a raw node compactly: "!Ref X", "[a, b]", "5".
func text(n *yaml.Node) string {
	if n == nil {
		return "<missing>"
	}
	tag := ""
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		tag = n.Tag + " "
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return tag + n.Value
	case yaml.SequenceNode:
		parts := make([]string, len(n.Content))
		for i, c := range n.Content {
			parts[i] = text(c)
		}
		return tag + "[" + strings.Join(parts, ", ") + "]"
	case yaml.MappingNode:
		parts := make([]string, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			parts = append(parts, n.Content[i].Value+": "+text(n.Content[i+1]))
		}
		return tag + "{" + strings.Join(parts, ", ") + "}"
	case yaml.AliasNode:
		return text(n.Alias)
	}
	return "<?>"
}

// fnProp is a function's property as SAM sees it: its own, else the
// Globals' (SAM merges them; goformation does not).
func (s *samTemplate) fnProp(id string, path ...string) *yaml.Node {
	if n := node(s.raw, append([]string{"Resources", id, "Properties"}, path...)...); n != nil {
		return n
	}
	return node(s.raw, append([]string{"Globals", "Function"}, path...)...)
}

func (s *samTemplate) fnTimeout(t *testing.T, id string) int {
	t.Helper()
	n := s.fnProp(id, "Timeout")
	v, err := strconv.Atoi(text(n))
	if err != nil {
		t.Fatalf("%s Timeout = %s, want a number of seconds", id, text(n))
	}
	return v
}

func (s *samTemplate) function(t *testing.T, id string) *serverless.Function {
	t.Helper()
	fn, err := s.cf.GetServerlessFunctionWithName(id)
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	return fn
}

// publicBaseURL is how every HTTP function and the outputs spell the API's
// base URL: the PublicBaseUrl parameter when set, else the API's own URL
// (only the API id: no cycle through the routes and integrations).
const publicBaseURL = "!If HasPublicBaseUrl ? !Ref PublicBaseUrl : !Sub https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"

// secretsPrefixARN is the only Secrets Manager resource besides the app
// secret: the connection secrets, {SecretPrefix}/conversations/{id}.
const secretsPrefixARN = "!Sub arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretPrefix}/*"

// Resource classes of the IAM matrix.
const (
	resTable     = "table"
	resPrefix    = "connection secrets"
	resAppSecret = "app secret"
	resQueue     = "votes queue"
	resDLQ       = "dead-letter queue"
	resBackfill  = "backfill queue"
	resBackDLQ   = "backfill dead-letter queue"
	resKAFailed  = "keepalive failure queue"
)

// resourceClass names an IAM statement resource, or "" for one the matrix
// does not allow (any other ARN, and "*").
func resourceClass(r string) string {
	switch r {
	case "!GetAtt Table.Arn":
		return resTable
	case secretsPrefixARN:
		return resPrefix
	case "!Ref AppSecret":
		return resAppSecret
	case "!GetAtt VotesQueue.Arn":
		return resQueue
	case "!GetAtt DeadLetterQueue.Arn":
		return resDLQ
	case "!GetAtt BackfillQueue.Arn":
		return resBackfill
	case "!GetAtt BackfillDeadLetterQueue.Arn":
		return resBackDLQ
	case "!GetAtt KeepaliveFailureQueue.Arn":
		return resKAFailed
	}
	return ""
}

// AWS-managed policies a function role may carry: the two SAM attaches to
// every role it generates (Tracing: Active adds the X-Ray one). Their
// statements use Resource "*": CloudWatch Logs' CreateLogGroup is
// account-wide and X-Ray's PutTraceSegments and PutTelemetryRecords take no
// resource-level permissions. They are the one documented exception to "no
// * resources"; every statement written in template.yaml names its ARNs.
var allowedManagedPolicies = map[string]bool{
	"!Sub arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": true,
	"!Sub arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess":                   true,
}

// statement is one IAM statement, with Action and Resource as lists.
type statement struct {
	effect    string
	actions   []string
	resources []string
}

func toStatement(t *testing.T, where string, v any) statement {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: statement %v is not a mapping", where, v)
	}
	list := func(key string) []string {
		switch x := m[key].(type) {
		case string:
			return []string{x}
		case []any:
			out := make([]string, len(x))
			for i, e := range x {
				s, ok := e.(string)
				if !ok {
					t.Fatalf("%s: %s entry %v is not a string", where, key, e)
				}
				out[i] = s
			}
			return out
		case nil:
			return nil
		}
		t.Fatalf("%s: %s is %T, want a string or a list", where, key, m[key])
		return nil
	}
	for _, k := range []string{"NotAction", "NotResource", "Principal", "NotPrincipal"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s: statement uses %s; least privilege lists Action and Resource", where, k)
		}
	}
	effect, _ := m["Effect"].(string)
	return statement{effect: effect, actions: list("Action"), resources: list("Resource")}
}

// rolePolicies is what a function may do: the statements written in the
// template for it, and the managed policies its role carries.
type rolePolicies struct {
	statements []statement
	managed    []string
	generated  bool // SAM generates the role (no Role property)
}

func (s *samTemplate) policies(t *testing.T, id string) rolePolicies {
	t.Helper()
	fn := s.function(t, id)
	var rp rolePolicies
	if fn.Role != nil {
		roleID, ok := strings.CutPrefix(*fn.Role, "!GetAtt ")
		roleID, ok2 := strings.CutSuffix(roleID, ".Arn")
		if !ok || !ok2 {
			t.Fatalf("%s Role = %q, want !GetAtt <a role of this template>.Arn", id, *fn.Role)
		}
		role, err := s.cf.GetIAMRoleWithName(roleID)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if fn.Policies != nil {
			t.Errorf("%s has both Role and Policies; SAM ignores Policies when Role is set", id)
		}
		for _, p := range role.Policies {
			for _, st := range asList(dig(p.PolicyDocument, "Statement")) {
				rp.statements = append(rp.statements, toStatement(t, id+" role policy "+p.PolicyName, st))
			}
		}
		rp.managed = role.ManagedPolicyArns
		if role.PermissionsBoundary != nil {
			t.Errorf("%s role has a permissions boundary; none is expected", id)
		}
		return rp
	}
	rp.generated = true
	if fn.Policies == nil || fn.Policies.IAMPolicyDocumentArray == nil {
		t.Fatalf("%s has no inline policy documents (Policies: - Statement: …)", id)
	}
	// goformation fills several of its union's members from one list, so
	// the raw YAML says what each entry is: an inline document, not a
	// managed policy's name or a SAM policy template.
	if raw := node(s.raw, "Resources", id, "Properties", "Policies"); raw == nil || raw.Kind != yaml.SequenceNode {
		t.Errorf("%s Policies is %s, want a list of inline policy documents", id, text(raw))
	} else {
		for _, p := range raw.Content {
			if p.Kind != yaml.MappingNode || node(p, "Statement") == nil || len(p.Content) > 4 ||
				len(p.Content) == 4 && node(p, "Version") == nil {
				t.Errorf("%s Policies entry %s is not an inline policy document (Version, Statement)", id, text(p))
			}
		}
	}
	for i, doc := range *fn.Policies.IAMPolicyDocumentArray {
		for _, st := range doc.Statement {
			rp.statements = append(rp.statements, toStatement(t, fmt.Sprintf("%s policy %d", id, i), st))
		}
	}
	// What SAM attaches to the role it generates.
	rp.managed = []string{"!Sub arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}
	if text(s.fnProp(id, "Tracing")) == "Active" {
		rp.managed = append(rp.managed, "!Sub arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess")
	}
	return rp
}

func asList(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	}
	return []any{v}
}

// grants flattens statements to resource class → actions.
func grants(t *testing.T, id string, sts []statement) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, st := range sts {
		if st.effect != "Allow" {
			t.Errorf("%s: statement with Effect %q; only Allow statements are expected", id, st.effect)
			continue
		}
		for _, r := range st.resources {
			class := resourceClass(r)
			if class == "" {
				t.Errorf("%s: resource %q is neither the table, the queues, the app secret nor %s", id, r, secretsPrefixARN)
				continue
			}
			out[class] = append(out[class], st.actions...)
		}
	}
	for k, v := range out {
		slices.Sort(v)
		out[k] = slices.Compact(v)
	}
	return out
}

// iamMatrix is what each function's code calls, by resource. A change to
// the code that needs another action fails here until the template (and
// this table) grant it.
var iamMatrix = map[string]map[string][]string{
	"ConnectionsFunction": {
		// register (read the old one, write), status, delete
		resTable: {"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"},
		// PutSecret creates, writes, restores one being deleted; DELETE
		// deletes.
		resPrefix: {"secretsmanager:CreateSecret", "secretsmanager:DeleteSecret", "secretsmanager:GetSecretValue",
			"secretsmanager:PutSecretValue", "secretsmanager:RestoreSecret"},
		resAppSecret: {"secretsmanager:GetSecretValue"}, // API keys, link key
	},
	"AuthorizeFunction": {
		resTable:     {"dynamodb:GetItem", "dynamodb:PutItem"}, // connection, state
		resAppSecret: {"secretsmanager:GetSecretValue"},        // link key
	},
	"CallbackFunction": {
		// take the state (DeleteItem), connection, status; parked votes
		// (Query, BatchWriteItem) requeued after a reconnect
		resTable: {"dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem",
			"dynamodb:Query", "dynamodb:UpdateItem"},
		resPrefix: {"secretsmanager:CreateSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"},
		resQueue:  {"sqs:SendMessage"},
	},
	"VotesFunction": {
		// vote records and contacts (batch), reservations, leases,
		// connection stats and status
		resTable: {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:GetItem",
			"dynamodb:PutItem", "dynamodb:UpdateItem"},
		// tokens rotate on refresh
		resPrefix: {"secretsmanager:CreateSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"},
		// the event source mapping's poller, and back-off visibility
		// and a message that failed for now once too often carried forward
		// (sent again as a fresh one)
		resQueue: {"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage",
			"sqs:SendMessage"},
		resDLQ: {"sqs:SendMessage"}, // dead messages, with their reason
		// The same on the backfill queue, for its messages: each message
		// is settled on the queue it came from, whose URL (and its
		// dead-letter queue's) the function looks up by the record's
		// eventSourceARN (sqsqueue.Sources).
		resBackfill: {"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
			"sqs:ReceiveMessage", "sqs:SendMessage"},
		resBackDLQ: {"sqs:GetQueueUrl", "sqs:SendMessage"},
	},
	"KeepaliveFunction": {
		// ListConnections is the one Scan; leases; status and refresh time
		resTable:  {"dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:UpdateItem"},
		resPrefix: {"secretsmanager:CreateSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"},
		// Lambda sends a run that failed after its retries to the
		// on-failure destination with the function's role.
		resKAFailed: {"sqs:SendMessage"},
	},
}

// knownEnv are the variables the functions read: pkg/config's and
// awsapp's queue URLs.
var knownEnv = map[string]bool{
	config.EnvTableName: true, config.EnvSecretPrefix: true, config.EnvAppSecretARN: true,
	config.EnvPublicBaseURL: true, config.EnvDefaultPhoneRegion: true, config.EnvMauticAllowlist: true,
	config.EnvLogLevel: true, config.EnvKeepaliveAfterDays: true, config.EnvMauticTimeout: true,
	config.EnvRetryBaseDelay: true, awsapp.EnvQueueURL: true, awsapp.EnvDLQURL: true,
	config.EnvMaxReceiveCount: true, config.EnvRetryHorizon: true,
	config.EnvMauticConcurrency: true, config.EnvBatchDeadline: true,
	config.EnvLastActiveGranularity: true,
}

// wantEnv are the values the template must give (beyond what config
// requires), by function.
var wantEnv = map[string]map[string]string{
	// Registration and the callback talk to Mautic inside API Gateway's
	// 30 s: a silent Mautic must time out first (MAUTIC_TIMEOUT, not the
	// default 30 s), so the answer is a clean error and not a 503.
	"ConnectionsFunction": {config.EnvPublicBaseURL: publicBaseURL, config.EnvAppSecretARN: "!Ref AppSecret",
		config.EnvMauticTimeout: "10s"},
	"AuthorizeFunction": {config.EnvPublicBaseURL: publicBaseURL, config.EnvAppSecretARN: "!Ref AppSecret"},
	// The callback requeues a conversation's parked votes once it is
	// connected again; without QUEUE_URL it silently would not.
	"CallbackFunction": {config.EnvPublicBaseURL: publicBaseURL, awsapp.EnvQueueURL: "!Ref VotesQueue",
		config.EnvMauticTimeout: "10s"},
	// The votes function carries a vote that keeps failing forward on its
	// queue before the redrive policy's maxReceiveCount (5, checked by
	// TestTemplateVotesQueue) could move it to the DLQ.
	// Fairness: a batch ends well within the function's 120 s (the
	// processor keeps 10 s to settle), and one Mautic gets at most 4
	// requests at once from a container.
	"VotesFunction": {awsapp.EnvDLQURL: "!Ref DeadLetterQueue", awsapp.EnvQueueURL: "!Ref VotesQueue",
		config.EnvDefaultPhoneRegion: "!Ref PhoneRegion", config.EnvMaxReceiveCount: "5", config.EnvRetryHorizon: "24h",
		config.EnvMauticConcurrency: "4", config.EnvBatchDeadline: "30s",
		// Fewer lastActive-only edits of authors' Mautics (docs/design.md).
		config.EnvLastActiveGranularity: "15m"},
	"KeepaliveFunction": {config.EnvKeepaliveAfterDays: "7"},
}

// sampleEnv resolves an environment as CloudFormation would with the
// parameters' defaults, so config.Parse can check the values.
func sampleEnv(env map[string]string) map[string]string {
	repl := map[string]string{
		"!Ref Table":           "ej-mautic-Table-1A2B3C4D5E6F",
		"!Ref SecretPrefix":    "ej-mautic",
		"!Ref AppSecret":       "arn:aws:secretsmanager:sa-east-1:123456789012:secret:AppSecret-Ab12Cd34Ef56-AbCdEf",
		publicBaseURL:          "https://abc123defg.execute-api.sa-east-1.amazonaws.com",
		"!Ref VotesQueue":      "https://sqs.sa-east-1.amazonaws.com/123456789012/ej-mautic-VotesQueue-AbCdEf",
		"!Ref DeadLetterQueue": "https://sqs.sa-east-1.amazonaws.com/123456789012/ej-mautic-DeadLetterQueue-AbCdEf",
		"!Ref PhoneRegion":     "BR",
	}
	out := map[string]string{}
	for k, v := range env {
		if r, ok := repl[v]; ok {
			v = r
		}
		out[k] = v
	}
	return out
}

// TestTemplateFunctions checks the Globals and, for each function, its
// build target, environment and log group.
func TestTemplateFunctions(t *testing.T) {
	s := loadTemplate(t)
	root := repoRoot(t)
	t.Run("globals", func(t *testing.T) {
		for _, c := range []struct{ path, want string }{
			{"Runtime", "provided.al2023"},
			{"Architectures", "[arm64]"},
			{"Handler", "bootstrap"},
			{"MemorySize", "128"},
			{"Tracing", "Active"},
			{"LoggingConfig", "{LogFormat: JSON}"},
		} {
			if got := text(node(s.raw, "Globals", "Function", c.path)); got != c.want {
				t.Errorf("Globals.Function.%s = %s, want %s", c.path, got, c.want)
			}
		}
		if got := text(node(s.raw, "Transform")); got != "AWS::Serverless-2016-10-31" {
			t.Errorf("Transform = %s, want AWS::Serverless-2016-10-31", got)
		}
		if n := len(s.cf.GetAllServerlessFunctionResources()); n != len(functions) {
			t.Errorf("template has %d functions, want %d", n, len(functions))
		}
	})
	for _, f := range functions {
		t.Run(f.id, func(t *testing.T) {
			fn := s.function(t, f.id)
			t.Run("build", func(t *testing.T) {
				if got := fmt.Sprint(fn.AWSCloudFormationMetadata["BuildMethod"]); got != "makefile" {
					t.Errorf("Metadata.BuildMethod = %s, want makefile", got)
				}
				if fn.CodeUri == nil || fn.CodeUri.String == nil || *fn.CodeUri.String != "." {
					t.Errorf("CodeUri = %s, want . (one module, shared pkg/)", text(node(s.raw, "Resources", f.id, "Properties", "CodeUri")))
				}
				for _, c := range []struct{ path, want string }{
					{"Runtime", "provided.al2023"},
					{"Architectures", "[arm64]"},
					{"Handler", "bootstrap"},
					{"MemorySize", "128"},
					{"Tracing", "Active"},
					{"LoggingConfig", "{LogFormat: JSON}"},
				} {
					if got := text(s.fnProp(f.id, c.path)); got != c.want {
						t.Errorf("%s = %s, want %s", c.path, got, c.want)
					}
				}
				// The target sam build runs, with exactly the recipe.
				cmd := exec.Command("make", "--no-print-directory", "-n", "build-"+f.id, "ARTIFACTS_DIR=/artifacts")
				cmd.Dir = root
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("make -n build-%s: %v\n%s", f.id, err, out)
				}
				want := `GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags "-s -w" -o /artifacts/bootstrap ./functions/` + f.dir
				if got := strings.TrimSpace(string(out)); got != want {
					t.Errorf("make build-%s runs\n  %s\nwant\n  %s", f.id, got, want)
				}
				bins, err := builds.arm64()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := checkBootstrap(bins[f.dir], elf.EM_AARCH64); err != nil {
					t.Error(err)
				}
			})
			t.Run("environment", func(t *testing.T) {
				var env map[string]string
				if fn.Environment != nil {
					env = fn.Environment.Variables
				}
				for _, k := range f.required {
					if _, ok := env[k]; !ok {
						t.Errorf("%s is missing; config.For%s requires it", k, strings.TrimSuffix(f.id, "Function"))
					}
				}
				for _, k := range slices.Sorted(maps.Keys(env)) {
					if !knownEnv[k] {
						t.Errorf("%s is not a variable the functions read (pkg/config, pkg/awsapp)", k)
					}
				}
				for k, want := range wantEnv[f.id] {
					if got, ok := env[k]; !ok || got != want {
						t.Errorf("%s = %q, want %q", k, got, want)
					}
				}
				if v, ok := env[config.EnvMauticAllowlist]; !ok || v != "" {
					t.Errorf("%s = %q (set: %v), want set and empty: no Mautic is exempt in production", config.EnvMauticAllowlist, v, ok)
				}
				if _, ok := env[config.EnvLogLevel]; !ok {
					t.Errorf("%s is not set", config.EnvLogLevel)
				}
				sample := sampleEnv(env)
				if _, err := config.Parse(func(k string) (string, bool) { v, ok := sample[k]; return v, ok }, f.required); err != nil {
					t.Errorf("the template's environment does not parse: %v", err)
				}
			})
			t.Run("log group", func(t *testing.T) {
				var found bool
				for name, lg := range s.cf.GetAllLogsLogGroupResources() {
					if lg.LogGroupName == nil || *lg.LogGroupName != "!Sub /aws/lambda/${"+f.id+"}" {
						continue
					}
					found = true
					if got := text(node(s.raw, "Resources", name, "Properties", "RetentionInDays")); got != "!Ref LogRetentionDays" {
						t.Errorf("%s RetentionInDays = %s, want !Ref LogRetentionDays", name, got)
					}
				}
				if !found {
					t.Errorf("no AWS::Logs::LogGroup named /aws/lambda/${%s}", f.id)
				}
			})
		})
	}
}

// TestTemplateHTTPAPI checks the routes of docs/design.md, their integrations
// and permissions, and that nothing depends on itself.
func TestTemplateHTTPAPI(t *testing.T) {
	s := loadTemplate(t)
	apis := s.cf.GetAllApiGatewayV2ApiResources()
	if len(apis) != 1 || apis["HttpApi"] == nil {
		t.Fatalf("want one AWS::ApiGatewayV2::Api named HttpApi, have %v", slices.Collect(maps.Keys(apis)))
	}
	if p := apis["HttpApi"].ProtocolType; p == nil || *p != "HTTP" {
		t.Errorf("HttpApi ProtocolType = %s, want HTTP", deref(p))
	}
	stages := s.cf.GetAllApiGatewayV2StageResources()
	var stageOK bool
	for _, st := range stages {
		stageOK = stageOK || st.ApiId == "!Ref HttpApi" && st.StageName == "$default" && st.AutoDeploy != nil && *st.AutoDeploy
	}
	if !stageOK {
		t.Error("no $default stage with AutoDeploy on HttpApi (the API URL has no stage path)")
	}
	routes := s.cf.GetAllApiGatewayV2RouteResources()
	integrations := s.cf.GetAllApiGatewayV2IntegrationResources()
	for _, c := range []struct{ route, fn string }{
		{"PUT " + httpapi.RouteConnection, "ConnectionsFunction"},
		{"GET " + httpapi.RouteConnection, "ConnectionsFunction"},
		{"DELETE " + httpapi.RouteConnection, "ConnectionsFunction"},
		{"GET " + httpapi.RouteAuthorize, "AuthorizeFunction"},
		{"GET " + httpapi.RouteCallback, "CallbackFunction"},
	} {
		t.Run(c.route, func(t *testing.T) {
			var n int
			for name, r := range routes {
				if r.RouteKey != c.route {
					continue
				}
				n++
				if r.ApiId != "!Ref HttpApi" {
					t.Errorf("%s ApiId = %s, want !Ref HttpApi", name, r.ApiId)
				}
				if r.Target == nil {
					t.Fatalf("%s has no Target", name)
				}
				integ, ok := strings.CutPrefix(*r.Target, "!Sub integrations/${")
				integ, ok2 := strings.CutSuffix(integ, "}")
				in := integrations[integ]
				if !ok || !ok2 || in == nil {
					t.Fatalf("%s Target = %s, want integrations/${<an integration>}", name, *r.Target)
				}
				if in.IntegrationType != "AWS_PROXY" || in.PayloadFormatVersion == nil || *in.PayloadFormatVersion != "2.0" {
					t.Errorf("%s: type %s, payload %s; want AWS_PROXY, 2.0", integ, in.IntegrationType, deref(in.PayloadFormatVersion))
				}
				// API Gateway gives up after TimeoutInMillis (30 s at
				// most): the function must finish first.
				if limit := deref(in.TimeoutInMillis); limit == 0 || limit > 30000 || s.fnTimeout(t, c.fn)*1000 >= limit {
					t.Errorf("%s TimeoutInMillis %d, %s Timeout %d s; want the function to end before API Gateway gives up (≤ 30 s)",
						integ, limit, c.fn, s.fnTimeout(t, c.fn))
				}
				if in.IntegrationUri == nil || *in.IntegrationUri != "!GetAtt "+c.fn+".Arn" {
					t.Errorf("%s IntegrationUri = %s, want !GetAtt %s.Arn", integ, deref(in.IntegrationUri), c.fn)
				}
			}
			if n != 1 {
				t.Errorf("%d routes with key %q, want 1", n, c.route)
			}
		})
	}
	if len(routes) != 5 {
		t.Errorf("%d routes, want the 5 of docs/design.md", len(routes))
	}
	for _, fnID := range []string{"ConnectionsFunction", "AuthorizeFunction", "CallbackFunction"} {
		var ok bool
		for _, p := range s.cf.GetAllLambdaPermissionResources() {
			if p.FunctionName == "!Ref "+fnID && p.Action == "lambda:InvokeFunction" && p.Principal == "apigateway.amazonaws.com" &&
				p.SourceArn != nil && strings.Contains(*p.SourceArn, ":${HttpApi}/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("no Lambda permission lets HttpApi invoke %s", fnID)
		}
	}
	for id, fn := range s.cf.GetAllServerlessFunctionResources() {
		for name, ev := range fn.Events {
			if ev.Type == "HttpApi" || ev.Type == "Api" {
				t.Errorf("%s event %s is a SAM %s event: it makes the API depend on the function, a cycle with PUBLIC_BASE_URL", id, name, ev.Type)
			}
		}
	}
	t.Run("no dependency cycle", func(t *testing.T) {
		if cycle := findCycle(s.raw); cycle != nil {
			t.Errorf("resources depend on each other in a cycle: %s", strings.Join(cycle, " → "))
		}
	})
}

// queuePair is a queue the votes function consumes, its DLQ, and the SQS
// event that feeds the function from it.
type queuePair struct {
	queue, dlq, event, concurrency string
}

// votesQueues are the votes function's two queues: the live votes, and
// the backfill of a conversation's past votes at a lower concurrency.
var votesQueues = []queuePair{
	{queue: "VotesQueue", dlq: "DeadLetterQueue", event: "Votes", concurrency: "MaximumConcurrency"},
	{queue: "BackfillQueue", dlq: "BackfillDeadLetterQueue", event: "Backfill", concurrency: "BackfillMaximumConcurrency"},
}

// TestTemplateVotesQueue checks the votes queue and the backfill queue,
// their DLQs and their SQS events (TestTemplateAlarms the alarms on the
// DLQs).
func TestTemplateVotesQueue(t *testing.T) {
	s := loadTemplate(t)
	for _, p := range votesQueues {
		t.Run(p.queue, func(t *testing.T) {
			q, err := s.cf.GetSQSQueueWithName(p.queue)
			if err != nil {
				t.Fatal(err)
			}
			dlq, err := s.cf.GetSQSQueueWithName(p.dlq)
			if err != nil {
				t.Fatal(err)
			}
			timeout := s.fnTimeout(t, "VotesFunction")
			if q.VisibilityTimeout == nil || *q.VisibilityTimeout < 6*timeout {
				t.Errorf("%s VisibilityTimeout = %v, want ≥ 6 × VotesFunction Timeout (%d s) = %d", p.queue, deref(q.VisibilityTimeout), timeout, 6*timeout)
			}
			if got := dig(q.RedrivePolicy, "maxReceiveCount"); fmt.Sprint(got) != "5" {
				t.Errorf("RedrivePolicy maxReceiveCount = %v, want 5", got)
			}
			if got := dig(q.RedrivePolicy, "deadLetterTargetArn"); got != "!GetAtt "+p.dlq+".Arn" {
				t.Errorf("RedrivePolicy deadLetterTargetArn = %v, want !GetAtt %s.Arn", got, p.dlq)
			}
			if dlq.MessageRetentionPeriod == nil || *dlq.MessageRetentionPeriod != 1209600 {
				t.Errorf("%s MessageRetentionPeriod = %v, want 1209600 (14 days)", p.dlq, deref(dlq.MessageRetentionPeriod))
			}
			// A message's age in the DLQ counts from its first enqueue.
			if q.MessageRetentionPeriod != nil && dlq.MessageRetentionPeriod != nil && *q.MessageRetentionPeriod >= *dlq.MessageRetentionPeriod {
				t.Errorf("%s keeps messages %d s, the DLQ %d s: dead messages would expire at once", p.queue, *q.MessageRetentionPeriod, *dlq.MessageRetentionPeriod)
			}
			for name, qq := range map[string]bool{p.queue: q.SqsManagedSseEnabled != nil && *q.SqsManagedSseEnabled,
				p.dlq: dlq.SqsManagedSseEnabled != nil && *dlq.SqsManagedSseEnabled} {
				if !qq {
					t.Errorf("%s: SqsManagedSseEnabled is not true", name)
				}
			}
			t.Run("carry forward before the redrive", func(t *testing.T) {
				fn := s.function(t, "VotesFunction")
				if got, want := fn.Environment.Variables[config.EnvMaxReceiveCount], fmt.Sprint(dig(q.RedrivePolicy, "maxReceiveCount")); got != want {
					t.Errorf("VotesFunction %s = %q, %s RedrivePolicy maxReceiveCount = %s: they must match", config.EnvMaxReceiveCount, got, p.queue, want)
				}
			})
		})
	}
	for _, qt := range []string{"standard", "fifo"} {
		fifo := qt == "fifo"
		raw := s.resolved(t, map[string]string{"QueueType": qt})
		t.Run("QueueType "+qt, func(t *testing.T) {
			events := node(raw, "Resources", "VotesFunction", "Properties", "Events")
			if events == nil || len(events.Content) != 2*len(votesQueues) {
				t.Fatalf("VotesFunction Events = %s, want one SQS event per queue (%d)", text(events), len(votesQueues))
			}
			for _, p := range votesQueues {
				// Both queues of one type: SQS refuses a standard
				// dead-letter queue for a FIFO queue, and the other way
				// round. The two pairs alike: EJ sends both the same way.
				for _, id := range []string{p.queue, p.dlq} {
					props := node(raw, "Resources", id, "Properties")
					want := map[bool]string{false: "<missing>", true: "true"}[fifo]
					if got := text(node(props, "FifoQueue")); got != want {
						t.Errorf("%s FifoQueue = %s, want %s", id, got, want)
					}
					// The consumer gives every message it sends again a
					// deduplication id of its own; EJ one per vote.
					want = map[bool]string{false: "<missing>", true: "false"}[fifo]
					if got := text(node(props, "ContentBasedDeduplication")); got != want {
						t.Errorf("%s ContentBasedDeduplication = %s, want %s", id, got, want)
					}
					if got := text(node(props, "DelaySeconds")); got != "<missing>" {
						t.Errorf("%s DelaySeconds = %s: a queue-level delay holds back every vote", id, got)
					}
					if got := text(node(props, "QueueName")); got != "<missing>" {
						t.Errorf("%s QueueName = %s, want CloudFormation's name (with .fifo on FIFO)", id, got)
					}
				}
				q := node(raw, "Resources", p.queue, "Properties")
				if got := text(node(q, "RedrivePolicy", "deadLetterTargetArn")); got != "!GetAtt "+p.dlq+".Arn" {
					t.Errorf("%s RedrivePolicy deadLetterTargetArn = %s", p.queue, got)
				}
				if fifo {
					for k, want := range map[string]string{"DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId"} {
						if got := text(node(q, k)); got != want {
							t.Errorf("%s %s = %s, want %s (high-throughput FIFO)", p.queue, k, got, want)
						}
					}
				}

				ev := node(events, p.event)
				for _, c := range []struct {
					path []string
					want string
				}{
					{[]string{"Type"}, "SQS"},
					{[]string{"Properties", "Queue"}, "!GetAtt " + p.queue + ".Arn"},
					{[]string{"Properties", "FunctionResponseTypes"}, "[ReportBatchItemFailures]"},
					{[]string{"Properties", "ScalingConfig", "MaximumConcurrency"}, "!Ref " + p.concurrency},
				} {
					if got := text(node(ev, c.path...)); got != c.want {
						t.Errorf("event %s: %s = %s, want %s", p.event, strings.Join(c.path, "."), got, c.want)
					}
				}
				// Lambda: at most 10,000 a batch from a standard queue, 10
				// from a FIFO queue, which takes no batching window.
				maxBatch := map[bool]int{false: 10000, true: 10}[fifo]
				batch, err := strconv.Atoi(text(node(ev, "Properties", "BatchSize")))
				if err != nil || batch < 1 || batch > maxBatch {
					t.Errorf("event %s: BatchSize = %s, want 1 to %d", p.event, text(node(ev, "Properties", "BatchSize")), maxBatch)
				}
				if w := node(ev, "Properties", "MaximumBatchingWindowInSeconds"); fifo {
					if w != nil {
						t.Errorf("event %s: MaximumBatchingWindowInSeconds = %s on a FIFO queue, which allows none", p.event, text(w))
					}
				} else if window, err := strconv.Atoi(text(w)); err != nil || window < 0 || window > 300 || batch > 10 && window < 1 {
					t.Errorf("event %s: MaximumBatchingWindowInSeconds = %s, want 0 to 300 (≥ 1 with BatchSize over 10)", p.event, text(w))
				}
				// Backfills are batched as live votes are: as few Mautic
				// calls per vote.
				live := node(events, votesQueues[0].event)
				for _, k := range []string{"BatchSize", "MaximumBatchingWindowInSeconds"} {
					if got, want := text(node(ev, "Properties", k)), text(node(live, "Properties", k)); got != want {
						t.Errorf("event %s: %s = %s, want the live votes' %s", p.event, k, got, want)
					}
				}
			}
		})
	}
	t.Run("concurrency parameters", func(t *testing.T) {
		p := s.cf.Parameters["QueueType"]
		if p.Default != "standard" || fmt.Sprint(p.AllowedValues) != "[standard fifo]" {
			t.Errorf("QueueType default %v, allowed %v; want standard of [standard fifo]", p.Default, p.AllowedValues)
		}
		for _, q := range votesQueues {
			p = s.cf.Parameters[q.concurrency]
			if p.MinValue == nil || *p.MinValue < 2 || p.MaxValue == nil || *p.MaxValue > 1000 {
				t.Errorf("%s MinValue %v, MaxValue %v; SQS accepts 2 to 1000", q.concurrency, deref(p.MinValue), deref(p.MaxValue))
			}
		}
		// A backfill takes the lower share of Mautic.
		live, backfill := s.cf.Parameters["MaximumConcurrency"].Default, s.cf.Parameters["BackfillMaximumConcurrency"].Default
		if l, ok := live.(float64); !ok || backfill != 2.0 || l <= 2 {
			t.Errorf("MaximumConcurrency default %v, BackfillMaximumConcurrency default %v; want the backfill's 2 (SQS's least), below the live votes'", live, backfill)
		}
		if d := deref(s.cf.Parameters["BackfillMaximumConcurrency"].Description); !strings.Contains(d, "docs/ej-integration.md") {
			t.Errorf("BackfillMaximumConcurrency description %q does not point to docs/ej-integration.md", d)
		}
	})
}

// TestTemplateKeepaliveSchedule checks the daily EventBridge schedule.
func TestTemplateKeepaliveSchedule(t *testing.T) {
	s := loadTemplate(t)
	fn := s.function(t, "KeepaliveFunction")
	var n int
	for name, ev := range fn.Events {
		if ev.Type != "Schedule" {
			t.Errorf("KeepaliveFunction event %s is %s; want only a Schedule", name, ev.Type)
			continue
		}
		n++
		se := ev.Properties.ScheduleEvent
		if se == nil || se.Schedule != "rate(1 day)" || se.Enabled == nil || !*se.Enabled {
			t.Errorf("KeepaliveFunction event %s: %s, want an enabled rate(1 day)", name, text(node(s.raw, "Resources", "KeepaliveFunction", "Properties", "Events", name)))
		}
	}
	if n != 1 {
		t.Errorf("KeepaliveFunction has %d schedules, want 1", n)
	}
}

// TestTemplateStorage checks the DynamoDB table and the app secret.
func TestTemplateStorage(t *testing.T) {
	s := loadTemplate(t)
	t.Run("table", func(t *testing.T) {
		tables := s.cf.GetAllDynamoDBTableResources()
		tbl := tables["Table"]
		if len(tables) != 1 || tbl == nil {
			t.Fatalf("want one DynamoDB table named Table, have %v", slices.Collect(maps.Keys(tables)))
		}
		if tbl.BillingMode == nil || *tbl.BillingMode != "PAY_PER_REQUEST" {
			t.Errorf("BillingMode = %v, want PAY_PER_REQUEST", deref(tbl.BillingMode))
		}
		var keys []string
		for _, k := range tbl.KeySchema {
			keys = append(keys, k.AttributeName+" "+k.KeyType)
		}
		if got := strings.Join(keys, ", "); got != "pk HASH, sk RANGE" {
			t.Errorf("KeySchema = %s, want pk HASH, sk RANGE", got)
		}
		var attrs []string
		for _, a := range tbl.AttributeDefinitions {
			attrs = append(attrs, a.AttributeName+" "+a.AttributeType)
		}
		if got := strings.Join(attrs, ", "); got != "pk S, sk S" {
			t.Errorf("AttributeDefinitions = %s, want pk S, sk S", got)
		}
		if ttl := tbl.TimeToLiveSpecification; ttl == nil || !ttl.Enabled || ttl.AttributeName == nil || *ttl.AttributeName != "ttl" {
			t.Error("TimeToLiveSpecification is not ttl, enabled")
		}
		if p := tbl.PointInTimeRecoverySpecification; p == nil || p.PointInTimeRecoveryEnabled == nil || !*p.PointInTimeRecoveryEnabled {
			t.Error("PointInTimeRecoverySpecification is not enabled")
		}
		if sse := tbl.SSESpecification; sse == nil || !sse.SSEEnabled {
			t.Error("SSESpecification is not SSEEnabled")
		}
		if len(tbl.GlobalSecondaryIndexes) > 0 || len(tbl.LocalSecondaryIndexes) > 0 {
			t.Error("the table has indexes; pkg/dynamostore uses none")
		}
	})
	t.Run("app secret", func(t *testing.T) {
		sec, err := s.cf.GetSecretsManagerSecretWithName("AppSecret")
		if err != nil {
			t.Fatal(err)
		}
		g := sec.GenerateSecretString
		if g == nil {
			t.Fatal("AppSecret has no GenerateSecretString")
		}
		if deref(g.SecretStringTemplate) != "{}" || deref(g.GenerateStringKey) != "api_keys" {
			t.Errorf("GenerateSecretString makes %s with %s; want {} with api_keys", deref(g.SecretStringTemplate), deref(g.GenerateStringKey))
		}
		if g.PasswordLength == nil || *g.PasswordLength < secretstore.MinAPIKeyLen {
			t.Errorf("PasswordLength = %v, want ≥ %d (secretstore.MinAPIKeyLen)", deref(g.PasswordLength), secretstore.MinAPIKeyLen)
		}
		// An API key travels in a header and is listed comma-separated.
		if g.ExcludePunctuation == nil || !*g.ExcludePunctuation || g.IncludeSpace != nil && *g.IncludeSpace {
			t.Error("the generated key may hold punctuation or spaces; want ExcludePunctuation and no IncludeSpace")
		}
		// Under SecretPrefix the functions that write connection secrets
		// could overwrite it.
		if sec.Name != nil && strings.Contains(*sec.Name, "${SecretPrefix}") {
			t.Errorf("AppSecret Name %s is under SecretPrefix", *sec.Name)
		}
	})
}

// TestTemplateIAM checks each function's permissions against iamMatrix,
// and that no statement has a wildcard resource.
func TestTemplateIAM(t *testing.T) {
	s := loadTemplate(t)
	writes := []string{"secretsmanager:PutSecretValue", "secretsmanager:CreateSecret", "secretsmanager:DeleteSecret",
		"secretsmanager:RestoreSecret", "secretsmanager:UpdateSecret"}
	for _, f := range functions {
		t.Run(f.id, func(t *testing.T) {
			rp := s.policies(t, f.id)
			got := grants(t, f.id, rp.statements)
			want := iamMatrix[f.id]
			for _, class := range slices.Sorted(maps.Keys(mergeKeys(got, want))) {
				if !slices.Equal(got[class], want[class]) {
					t.Errorf("on the %s: %v, want %v", class, got[class], want[class])
				}
			}
			for _, st := range rp.statements {
				for _, a := range st.actions {
					if strings.Contains(a, "*") {
						t.Errorf("action %q has a wildcard", a)
					}
				}
				for _, r := range st.resources {
					if strings.Contains(r, "*") && r != secretsPrefixARN {
						t.Errorf("resource %q has a wildcard", r)
					}
				}
			}
			for _, m := range rp.managed {
				if !allowedManagedPolicies[m] {
					t.Errorf("managed policy %s is not one of the documented AWS-managed exceptions", m)
				}
			}
			// Events whose SAM expansion attaches a managed policy with
			// Resource "*" to a generated role (SQS:
			// AWSLambdaSQSQueueExecutionRole, on every queue).
			if rp.generated {
				for name, ev := range s.function(t, f.id).Events {
					if ev.Type != "Schedule" {
						t.Errorf("event %s (%s) on a SAM-generated role: SAM would attach a managed policy on every resource; declare the role", name, ev.Type)
					}
				}
			}
			var wrote []string
			for _, a := range got[resPrefix] {
				if slices.Contains(writes, a) {
					wrote = append(wrote, a)
				}
			}
			if f.id == "AuthorizeFunction" && (len(got[resPrefix]) > 0 || len(wrote) > 0) {
				t.Errorf("authorize may %v on the connection secrets; it needs none", got[resPrefix])
			}
			if f.id != "ConnectionsFunction" && (slices.Contains(wrote, "secretsmanager:DeleteSecret") || slices.Contains(wrote, "secretsmanager:RestoreSecret")) {
				t.Errorf("only connections deletes or restores connection secrets; %s may %v", f.id, wrote)
			}
		})
	}
	t.Run("no wildcard resources", func(t *testing.T) {
		for name, role := range s.cf.GetAllIAMRoleResources() {
			for _, p := range role.Policies {
				for _, st := range asList(dig(p.PolicyDocument, "Statement")) {
					for _, r := range toStatement(t, name, st).resources {
						if r == "*" {
							t.Errorf("role %s policy %s: Resource \"*\"", name, p.PolicyName)
						}
					}
				}
			}
			for _, m := range role.ManagedPolicyArns {
				if !allowedManagedPolicies[m] {
					t.Errorf("role %s: managed policy %s is not a documented exception", name, m)
				}
			}
		}
		if n := len(s.cf.GetAllIAMPolicyResources()) + len(s.cf.GetAllIAMManagedPolicyResources()); n > 0 {
			t.Errorf("%d standalone IAM policies; the roles hold their policies inline", n)
		}
	})
}

// TestTemplateParameters checks the parameters, their defaults and patterns.
func TestTemplateParameters(t *testing.T) {
	s := loadTemplate(t)
	for _, c := range []struct {
		name, typ string
		def       any
	}{
		{"SecretPrefix", "String", "ej-mautic"},
		{"PhoneRegion", "String", "BR"},
		{"MaximumConcurrency", "Number", 5.0},
		{"BackfillMaximumConcurrency", "Number", 2.0},
		{"AlarmEmail", "String", ""},
		{"LogRetentionDays", "Number", 30.0},
		{"PublicBaseUrl", "String", ""},
		{"ApiReservedConcurrency", "Number", 10.0},
		{"QueueType", "String", "standard"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, ok := s.cf.Parameters[c.name]
			if !ok {
				t.Fatalf("no parameter %s", c.name)
			}
			if p.Type != c.typ || p.Default != c.def {
				t.Errorf("%s: %s default %#v, want %s default %#v", c.name, p.Type, p.Default, c.typ, c.def)
			}
			if p.AllowedPattern != nil {
				re, err := regexp.Compile(*p.AllowedPattern)
				if err != nil {
					t.Fatalf("AllowedPattern: %v", err)
				}
				if !re.MatchString(fmt.Sprint(p.Default)) {
					t.Errorf("AllowedPattern %s refuses the default %q", *p.AllowedPattern, p.Default)
				}
			}
		})
	}
	t.Run("patterns", func(t *testing.T) {
		for _, c := range []struct {
			param, value string
			ok           bool
		}{
			{"SecretPrefix", "ej-mautic/prod", true},
			{"SecretPrefix", "ej-mautic/", false}, // would make the ARN pattern ej-mautic//*
			{"SecretPrefix", "ej mautic", false},
			{"PublicBaseUrl", "https://mautic.ej.example.org", true},
			{"PublicBaseUrl", "https://mautic.ej.example.org/", false},
			{"PublicBaseUrl", "http://mautic.ej.example.org", false},
			{"PhoneRegion", "PT", true},
			{"PhoneRegion", "br", false},
		} {
			re := regexp.MustCompile(deref(s.cf.Parameters[c.param].AllowedPattern))
			if got := re.MatchString(c.value); got != c.ok {
				t.Errorf("%s %q accepted = %v, want %v", c.param, c.value, got, c.ok)
			}
		}
	})
}

// TestTemplateOutputs checks what EJ and operators read from the stack.
func TestTemplateOutputs(t *testing.T) {
	s := loadTemplate(t)
	for _, c := range []struct{ name, want string }{
		{"ApiBaseUrl", publicBaseURL},
		{"CallbackUrlPattern", "!Sub {" + publicBaseURL + "}/conversations/{conversation_id}/mautic/callback"},
		{"RedirectUriPrefix", "!Sub {" + publicBaseURL + "}/"},
		{"VotesQueueUrl", "!Ref VotesQueue"},
		{"VotesQueueArn", "!GetAtt VotesQueue.Arn"},
		{"DeadLetterQueueUrl", "!Ref DeadLetterQueue"},
		{"BackfillQueueUrl", "!Ref BackfillQueue"},
		{"BackfillQueueArn", "!GetAtt BackfillQueue.Arn"},
		{"BackfillDeadLetterQueueUrl", "!Ref BackfillDeadLetterQueue"},
		{"AppSecretArn", "!Ref AppSecret"},
		{"TableName", "!Ref Table"},
		{"AlarmTopicArn", "!Ref AlarmTopic"},
		{"KeepaliveFailureQueueUrl", "!Ref KeepaliveFailureQueue"},
		{"AccessLogGroupName", "!Ref HttpApiAccessLogGroup"},
		{"DashboardName", "!Ref Dashboard"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, ok := s.cf.Outputs[c.name]
			if !ok {
				t.Fatalf("no output %s", c.name)
			}
			if o.Value != c.want {
				t.Errorf("%s = %v, want %s", c.name, o.Value, c.want)
			}
			if o.Condition != nil {
				t.Errorf("%s has a Condition; every output is always there", c.name)
			}
		})
	}
}

func mergeKeys[V any](a, b map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// deref is *p, or T's zero value for nil.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// subRefRE finds the names a Fn::Sub string refers to.
var subRefRE = regexp.MustCompile(`\$\{([A-Za-z0-9]+)(\.[A-Za-z0-9.]+)?\}`)

// findCycle looks for a cycle among the resources through Ref, GetAtt, Sub
// and DependsOn, as CloudFormation would refuse it; nil when there is none.
func findCycle(raw *yaml.Node) []string {
	resources := node(raw, "Resources")
	if resources == nil {
		return nil
	}
	deps := map[string][]string{}
	isResource := map[string]bool{}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		isResource[resources.Content[i].Value] = true
	}
	var refs func(n *yaml.Node, out map[string]bool)
	refs = func(n *yaml.Node, out map[string]bool) {
		if n == nil {
			return
		}
		add := func(name string) {
			name, _, _ = strings.Cut(name, ".")
			if isResource[name] {
				out[name] = true
			}
		}
		switch n.Tag {
		case "!Ref", "!GetAtt":
			if n.Kind == yaml.ScalarNode {
				add(n.Value)
			} else if n.Kind == yaml.SequenceNode && len(n.Content) > 0 {
				add(n.Content[0].Value)
			}
		case "!Sub":
			s := n
			if n.Kind == yaml.SequenceNode && len(n.Content) > 0 {
				s = n.Content[0]
			}
			for _, m := range subRefRE.FindAllStringSubmatch(s.Value, -1) {
				add(m[1])
			}
		}
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				switch n.Content[i].Value {
				case "Ref", "DependsOn":
					for _, c := range append([]*yaml.Node{n.Content[i+1]}, n.Content[i+1].Content...) {
						if c.Kind == yaml.ScalarNode {
							add(c.Value)
						}
					}
				case "Fn::GetAtt":
					v := n.Content[i+1]
					if v.Kind == yaml.ScalarNode {
						add(v.Value)
					} else if len(v.Content) > 0 {
						add(v.Content[0].Value)
					}
				case "Fn::Sub":
					v := n.Content[i+1]
					if v.Kind == yaml.SequenceNode && len(v.Content) > 0 {
						v = v.Content[0]
					}
					for _, m := range subRefRE.FindAllStringSubmatch(v.Value, -1) {
						add(m[1])
					}
				}
			}
		}
		for _, c := range n.Content {
			refs(c, out)
		}
	}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		out := map[string]bool{}
		refs(resources.Content[i+1], out)
		deps[resources.Content[i].Value] = slices.Sorted(maps.Keys(out))
	}
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(string) []string
	visit = func(r string) []string {
		state[r] = active
		stack = append(stack, r)
		for _, d := range deps[r] {
			switch state[d] {
			case active:
				i := slices.Index(stack, d)
				return append(slices.Clone(stack[i:]), d)
			case unseen:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[r] = done
		return nil
	}
	for _, r := range slices.Sorted(maps.Keys(deps)) {
		if state[r] == unseen {
			if c := visit(r); c != nil {
				return c
			}
		}
	}
	return nil
}
