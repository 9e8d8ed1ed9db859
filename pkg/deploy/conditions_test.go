package deploy

import (
	"fmt"
	"testing"

	"gopkg.in/yaml.v3"
)

// resolved is the raw template as CloudFormation sees it with the given
// parameter values (the others at their defaults): every !If replaced by
// the branch its condition picks, and a key whose value is
// !Ref AWS::NoValue removed. Conditions may use !Equals, !Not, !And, !Or,
// !Condition and !Ref of a parameter; other intrinsics are kept as they
// are.
func (s *samTemplate) resolved(t *testing.T, params map[string]string) *yaml.Node {
	t.Helper()
	r := &resolver{t: t, s: s, params: params, conds: map[string]bool{}}
	return r.node(s.raw)
}

type resolver struct {
	t      *testing.T
	s      *samTemplate
	params map[string]string
	conds  map[string]bool
}

// param is a parameter's value: given, else its default.
func (r *resolver) param(name string) string {
	if v, ok := r.params[name]; ok {
		return v
	}
	p := node(r.s.raw, "Parameters", name)
	if p == nil {
		r.t.Fatalf("no parameter %s", name)
	}
	return node(p, "Default").Value
}

// scalar is a condition operand's value.
func (r *resolver) scalar(n *yaml.Node) string {
	switch {
	case n.Tag == "!Ref":
		return r.param(n.Value)
	case n.Kind == yaml.ScalarNode:
		return n.Value
	}
	r.t.Fatalf("condition operand %s is not a parameter or a value", text(n))
	return ""
}

// cond evaluates a condition expression.
func (r *resolver) cond(n *yaml.Node) bool {
	switch n.Tag {
	case "!Equals":
		return r.scalar(n.Content[0]) == r.scalar(n.Content[1])
	case "!Not":
		return !r.cond(n.Content[0])
	case "!And", "!Or":
		and := n.Tag == "!And"
		for _, c := range n.Content {
			if r.cond(c) != and {
				return !and
			}
		}
		return and
	case "!Condition":
		return r.named(n.Value)
	}
	r.t.Fatalf("condition %s: unsupported", text(n))
	return false
}

// named evaluates the template's condition name.
func (r *resolver) named(name string) bool {
	if v, ok := r.conds[name]; ok {
		return v
	}
	c := node(r.s.raw, "Conditions", name)
	if c == nil {
		r.t.Fatalf("no condition %s", name)
	}
	v := r.cond(c)
	r.conds[name] = v
	return v
}

func isNoValue(n *yaml.Node) bool { return n != nil && n.Tag == "!Ref" && n.Value == "AWS::NoValue" }

// node copies n with every !If resolved; nil for !Ref AWS::NoValue.
func (r *resolver) node(n *yaml.Node) *yaml.Node {
	if n.Tag == "!If" {
		if n.Kind != yaml.SequenceNode || len(n.Content) != 3 {
			r.t.Fatalf("!If %s: want [condition, then, else]", text(n))
		}
		if r.named(n.Content[0].Value) {
			return r.node(n.Content[1])
		}
		return r.node(n.Content[2])
	}
	if isNoValue(n) {
		return nil
	}
	c := *n
	c.Content = nil
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if v := r.node(n.Content[i+1]); v != nil {
				c.Content = append(c.Content, n.Content[i], v)
			}
		}
	default:
		for _, k := range n.Content {
			if v := r.node(k); v != nil {
				c.Content = append(c.Content, v)
			}
		}
	}
	return &c
}

func TestResolver(t *testing.T) {
	var doc yaml.Node
	src := `
Parameters:
  P: {Type: String, Default: a}
Conditions:
  IsA: !Equals [!Ref P, a]
  NotA: !Not [!Condition IsA]
  Both: !And [!Condition IsA, !Equals [x, x]]
Resources:
  R:
    Properties:
      X: !If [IsA, 1, 2]
      Y: !If [NotA, 3, !Ref AWS::NoValue]
      Z: !If [Both, [!If [NotA, 4, 5]], 6]
`
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	s := &samTemplate{raw: doc.Content[0]}
	for p, want := range map[string]string{"a": "{X: 1, Z: [5]}", "b": "{X: 2, Y: 3, Z: 6}"} {
		got := text(node(s.resolved(t, map[string]string{"P": p}), "Resources", "R", "Properties"))
		if got != want {
			t.Errorf("P=%s: %s, want %s", p, got, want)
		}
	}
	if got := fmt.Sprint(text(node(s.resolved(t, nil), "Resources", "R", "Properties", "X"))); got != "1" {
		t.Errorf("default P: X = %s, want 1", got)
	}
}
