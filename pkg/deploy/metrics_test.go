package deploy

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/metrics"
)

// This file finds the metrics the code emits, from the code itself, so
// that the dashboard and the alarms can be checked against them: a metric
// renamed in the code, or a typo in the template, fails here instead of
// drawing an empty graph or an alarm that never fires.

// emission is one metric as a function emits it.
type emission struct {
	function string // the Function dimension's value
	name     string
	dims     string // the other dimensions' names, sorted, comma-separated
}

func (e emission) String() string {
	s := fmt.Sprintf("%s{Function=%s", e.name, e.function)
	if e.dims != "" {
		s += "," + e.dims
	}
	return s + "}"
}

const metricsImport = "github.com/ejplatform/ej-mautic/pkg/metrics"

// emittedMetrics reads the non-test Go files of every functions/<name>
// and returns what they emit: the EMF literal of a function's package
// gives its Function dimension, and each Emit(now, map{…}) and
// EmitWith(now, map{dims…}, map{…}) call its metric names and extra
// dimensions. Keys may be string literals or string constants of the same
// package or of pkg/metrics. Anything the reader cannot resolve fails the
// test rather than being skipped, so the set is never silently short.
func emittedMetrics(t *testing.T) map[emission]bool {
	t.Helper()
	root := repoRoot(t)
	metricsConsts := stringConsts(t, filepath.Join(root, "pkg", "metrics"))
	dirs, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[emission]bool{}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(root, "functions", d.Name())
		local := stringConsts(t, dir)
		var functionValues []string
		type call struct {
			where string
			names []string
			dims  []string
		}
		var calls []call
		for _, f := range parseDir(t, dir) {
			name := importName(f.file, metricsImport)
			resolve := func(e ast.Expr) (string, error) {
				switch x := e.(type) {
				case *ast.BasicLit:
					if x.Kind == token.STRING {
						return strconv.Unquote(x.Value)
					}
				case *ast.Ident:
					if v, ok := local[x.Name]; ok {
						return v, nil
					}
				case *ast.SelectorExpr:
					if id, ok := x.X.(*ast.Ident); ok && name != "" && id.Name == name {
						if v, ok := metricsConsts[x.Sel.Name]; ok {
							return v, nil
						}
					}
				}
				return "", fmt.Errorf("%s: cannot resolve %s to a string", f.fset.Position(e.Pos()), exprText(e))
			}
			// keys resolves the keys (and, with vals, the values) of a map
			// literal.
			keys := func(e ast.Expr, vals bool) ([]string, []string, error) {
				lit, ok := e.(*ast.CompositeLit)
				if !ok {
					return nil, nil, fmt.Errorf("%s: %s is not a map literal", f.fset.Position(e.Pos()), exprText(e))
				}
				var ks, vs []string
				for _, el := range lit.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						return nil, nil, fmt.Errorf("%s: not a key: value entry", f.fset.Position(el.Pos()))
					}
					k, err := resolve(kv.Key)
					if err != nil {
						return nil, nil, err
					}
					ks = append(ks, k)
					if vals {
						v, err := resolve(kv.Value)
						if err != nil {
							return nil, nil, err
						}
						vs = append(vs, v)
					}
				}
				return ks, vs, nil
			}
			ast.Inspect(f.file, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.CompositeLit:
					sel, ok := x.Type.(*ast.SelectorExpr)
					if !ok || sel.Sel.Name != "EMF" || name == "" || exprText(sel.X) != name {
						return true
					}
					for _, el := range x.Elts {
						kv, ok := el.(*ast.KeyValueExpr)
						if !ok || exprText(kv.Key) != "Dimensions" {
							continue
						}
						ks, vs, err := keys(kv.Value, true)
						if err != nil {
							t.Error(err)
							return true
						}
						for i, k := range ks {
							if k != metrics.DimFunction {
								t.Errorf("%s: the EMF of functions/%s has dimension %s; only %s is expected on every record",
									f.fset.Position(x.Pos()), d.Name(), k, metrics.DimFunction)
								continue
							}
							functionValues = append(functionValues, vs[i])
						}
					}
				case *ast.CallExpr:
					sel, ok := x.Fun.(*ast.SelectorExpr)
					if !ok || sel.Sel.Name != "Emit" && sel.Sel.Name != "EmitWith" {
						return true
					}
					c := call{where: f.fset.Position(x.Pos()).String()}
					want := map[string]int{"Emit": 2, "EmitWith": 3}[sel.Sel.Name]
					if len(x.Args) != want {
						t.Errorf("%s: %s with %d arguments", c.where, sel.Sel.Name, len(x.Args))
						return true
					}
					var err error
					if c.names, _, err = keys(x.Args[len(x.Args)-1], false); err != nil {
						t.Error(err)
						return true
					}
					if want == 3 {
						if c.dims, _, err = keys(x.Args[1], false); err != nil {
							t.Error(err)
							return true
						}
					}
					calls = append(calls, c)
				}
				return true
			})
		}
		if len(calls) == 0 {
			continue
		}
		slices.Sort(functionValues)
		functionValues = slices.Compact(functionValues)
		if len(functionValues) != 1 {
			t.Errorf("functions/%s emits metrics with Function dimension values %v; want exactly one metrics.EMF literal giving it",
				d.Name(), functionValues)
			continue
		}
		for _, c := range calls {
			dims := slices.Clone(c.dims)
			slices.Sort(dims)
			if slices.Contains(dims, metrics.DimFunction) {
				t.Errorf("%s: a record of its own sets %s", c.where, metrics.DimFunction)
			}
			for _, n := range c.names {
				out[emission{function: functionValues[0], name: n, dims: strings.Join(dims, ",")}] = true
			}
		}
	}
	return out
}

type parsedFile struct {
	fset *token.FileSet
	file *ast.File
}

// parseDir parses the non-test Go files of dir.
func parseDir(t *testing.T, dir string) []parsedFile {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []parsedFile
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, parsedFile{fset, f})
	}
	return out
}

// stringConsts is the package-level string constants of the Go package in
// dir that are given as literals.
func stringConsts(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range parseDir(t, dir) {
		for _, decl := range f.file.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if v, err := strconv.Unquote(lit.Value); err == nil {
							out[n.Name] = v
						}
					}
				}
			}
		}
	}
	return out
}

// importName is the name file f uses for the package path, "" when it
// does not import it.
func importName(f *ast.File, path string) string {
	for _, im := range f.Imports {
		if p, _ := strconv.Unquote(im.Path.Value); p == path {
			if im.Name != nil {
				return im.Name.Name
			}
			return filepath.Base(path)
		}
	}
	return ""
}

func exprText(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return exprText(x.X) + "." + x.Sel.Name
	case *ast.BasicLit:
		return x.Value
	}
	return fmt.Sprintf("%T", e)
}

// dimensionValues are the values the code gives the dimensions beyond
// Function: each is one of a handful, never an id.
func dimensionValues() map[string][]string {
	var kinds []string
	for k := mautic.KindNone + 1; !strings.HasPrefix(k.String(), "kind("); k++ {
		kinds = append(kinds, k.String())
	}
	return map[string][]string{
		metrics.DimKind: kinds,
		metrics.DimStatus: {string(connection.StatusConnected), string(connection.StatusPending),
			string(connection.StatusNeedsReauthorization)},
	}
}

// metricRef is a metric the template refers to, in a dashboard widget or
// an alarm.
type metricRef struct {
	where           string
	namespace, name string
	dims            map[string]string // values as the template spells them
}

func (r metricRef) String() string {
	keys := slices.Sorted(maps.Keys(r.dims))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + r.dims[k]
	}
	return fmt.Sprintf("%s %s{%s}", r.namespace, r.name, strings.Join(parts, ","))
}

// awsMetrics are the AWS metrics the template may use, by namespace, and
// the one dimension each is read by.
var awsMetrics = map[string]struct {
	dim   string
	names []string
}{
	"AWS/SQS":        {"QueueName", []string{"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "NumberOfMessagesSent"}},
	"AWS/Lambda":     {"FunctionName", []string{"Errors", "Duration", "Throttles", "Invocations", "ConcurrentExecutions"}},
	"AWS/ApiGateway": {"ApiId", []string{"Count", "4xx", "5xx", "Latency", "IntegrationLatency"}},
}

// checkMetricRef checks one reference: an ej-mautic metric must be one
// the code emits, with its dimensions; an AWS metric must be a known one
// on a resource of this template of the right type.
func checkMetricRef(t *testing.T, s *samTemplate, emitted map[emission]bool, r metricRef) {
	t.Helper()
	if r.namespace == metrics.Namespace {
		var extra []string
		for k := range r.dims {
			if k != metrics.DimFunction {
				extra = append(extra, k)
			}
		}
		slices.Sort(extra)
		e := emission{function: r.dims[metrics.DimFunction], name: r.name, dims: strings.Join(extra, ",")}
		if !emitted[e] {
			var same []string
			for x := range emitted {
				if x.name == r.name {
					same = append(same, x.String())
				}
			}
			t.Errorf("%s: %s is not emitted by the code (emitted as: %v)", r.where, r, same)
		}
		allowed := dimensionValues()
		for _, k := range extra {
			if !slices.Contains(allowed[k], r.dims[k]) {
				t.Errorf("%s: %s: %s=%q is not one of %v", r.where, r, k, r.dims[k], allowed[k])
			}
		}
		return
	}
	m, ok := awsMetrics[r.namespace]
	if !ok {
		t.Errorf("%s: %s: namespace %s is neither %s nor one this test knows", r.where, r, r.namespace, metrics.Namespace)
		return
	}
	if !slices.Contains(m.names, r.name) {
		t.Errorf("%s: %s: %s is not a %s metric this test knows (%v)", r.where, r, r.name, r.namespace, m.names)
	}
	if len(r.dims) != 1 || r.dims[m.dim] == "" {
		t.Errorf("%s: %s: want the one dimension %s", r.where, r, m.dim)
		return
	}
	id := r.dims[m.dim] // "${X}", "${X.QueueName}", "!Ref X", "!GetAtt X.QueueName"
	for _, affix := range [][2]string{{"${", "}"}, {"!Ref ", ""}, {"!GetAtt ", ""}} {
		if v, ok := strings.CutPrefix(id, affix[0]); ok {
			id, _ = strings.CutSuffix(v, affix[1])
			break
		}
	}
	var okRef bool
	switch r.namespace {
	case "AWS/SQS":
		res, found := strings.CutSuffix(id, ".QueueName")
		_, err := s.cf.GetSQSQueueWithName(res)
		okRef = found && err == nil
	case "AWS/Lambda":
		_, err := s.cf.GetServerlessFunctionWithName(id)
		okRef = err == nil
	case "AWS/ApiGateway":
		_, err := s.cf.GetApiGatewayV2ApiWithName(id)
		okRef = err == nil
	}
	if !okRef {
		t.Errorf("%s: %s: %s does not name a resource of this template of the right type", r.where, r, r.dims[m.dim])
	}
}

// widget is one widget of the dashboard.
type widget struct {
	Type       string         `json:"type"`
	X          int            `json:"x"`
	Y          int            `json:"y"`
	Width      int            `json:"width"`
	Height     int            `json:"height"`
	Properties map[string]any `json:"properties"`
}

func (w widget) title() string { s, _ := w.Properties["title"].(string); return s }

// dashboard reads the Dashboard's body: the JSON inside its !Sub.
func (s *samTemplate) dashboard(t *testing.T) []widget {
	t.Helper()
	n := node(s.raw, "Resources", "Dashboard", "Properties", "DashboardBody")
	if n == nil || n.Tag != "!Sub" || n.Kind != yaml.ScalarNode {
		t.Fatalf("Dashboard DashboardBody = %s, want !Sub with the JSON body", text(n))
	}
	var body struct {
		Widgets []widget `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(n.Value), &body); err != nil {
		t.Fatalf("DashboardBody is not JSON: %v", err)
	}
	return body.Widgets
}

// widgetMetrics reads a metric widget's "metrics": rows of namespace,
// name, dimension name and value pairs, and an optional options object; a
// "." repeats the row above's entry at that place.
func widgetMetrics(t *testing.T, w widget) []metricRef {
	t.Helper()
	rows, ok := w.Properties["metrics"].([]any)
	if !ok || len(rows) == 0 {
		t.Errorf("widget %q has no metrics", w.title())
		return nil
	}
	var out []metricRef
	var prev []string
	for i, row := range rows {
		cells, _ := row.([]any)
		var strs []string
		for _, c := range cells {
			switch v := c.(type) {
			case string:
				strs = append(strs, v)
			case map[string]any:
				if _, expr := v["expression"]; expr && len(strs) == 0 {
					strs = nil // metric math on the rows above: nothing to resolve
				}
			default:
				t.Errorf("widget %q row %d: entry %v", w.title(), i, c)
			}
		}
		if len(strs) == 0 {
			continue
		}
		for j := range strs {
			if strs[j] == "." {
				if j >= len(prev) {
					t.Errorf("widget %q row %d: \".\" with nothing above", w.title(), i)
					continue
				}
				strs[j] = prev[j]
			}
		}
		prev = strs
		if len(strs) < 2 || len(strs)%2 != 0 {
			t.Errorf("widget %q row %d: %v is not namespace, name and dimension pairs", w.title(), i, strs)
			continue
		}
		r := metricRef{where: fmt.Sprintf("widget %q", w.title()), namespace: strs[0], name: strs[1], dims: map[string]string{}}
		for j := 2; j < len(strs); j += 2 {
			r.dims[strs[j]] = strs[j+1]
		}
		out = append(out, r)
	}
	return out
}

// alarmMetric is what an alarm watches.
func alarmMetric(s *samTemplate, name string) metricRef {
	a := s.cf.GetAllCloudWatchAlarmResources()[name]
	r := metricRef{where: "alarm " + name, namespace: deref(a.Namespace), name: deref(a.MetricName), dims: map[string]string{}}
	for _, d := range a.Dimensions {
		r.dims[d.Name] = d.Value
	}
	return r
}

// TestEmittedMetrics checks the reader of the code against what it must
// find: the votes summary, the Mautic usage and the keepalive's figures.
func TestEmittedMetrics(t *testing.T) {
	emitted := emittedMetrics(t)
	for _, want := range []emission{
		{"votes", "VotesSynced", ""}, {"votes", "DeadLettered", ""},
		{"votes", metrics.MauticCalls, ""}, {"votes", metrics.MauticErrors, metrics.DimKind},
		{"keepalive", metrics.Connections, metrics.DimStatus}, {"keepalive", metrics.KeepaliveRefreshed, ""},
	} {
		if !emitted[want] {
			t.Errorf("%s not found in functions/ (found %v)", want, slices.Sorted(maps.Keys(stringSet(emitted))))
		}
	}
	values := dimensionValues()
	for e := range emitted {
		for _, d := range strings.Split(e.dims, ",") {
			if d != "" && len(values[d]) == 0 {
				t.Errorf("%s: this test does not know the values of dimension %s (add them to dimensionValues)", e, d)
			}
		}
	}
	if len(values[metrics.DimKind]) < 8 || !slices.Contains(values[metrics.DimKind], "rate_limited") {
		t.Errorf("Mautic kinds = %v", values[metrics.DimKind])
	}
}

func stringSet(m map[emission]bool) map[string]bool {
	out := map[string]bool{}
	for e := range m {
		out[e.String()] = true
	}
	return out
}

// emfRecords are the EMF records of a function in a process's output.
func emfRecords(out, function string) []map[string]any {
	var recs []map[string]any
	for _, line := range strings.Split(out, "\n") {
		i := strings.Index(line, `{"`)
		if i < 0 || !strings.Contains(line, `"_aws"`) {
			continue
		}
		var r map[string]any
		if json.Unmarshal([]byte(line[i:]), &r) != nil {
			continue
		}
		if r[metrics.DimFunction] == function {
			recs = append(recs, r)
		}
	}
	return recs
}
