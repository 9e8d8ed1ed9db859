package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// operationsDoc is docs/operations.md, the operators' runbook.
func operationsDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOperationsDoc checks that the runbook follows the template: an entry
// for every alarm and every dashboard widget, the outputs it sends
// operators to, what the issue asked of it; and that README.md and
// docs/deploy.md link it.
func TestOperationsDoc(t *testing.T) {
	s := loadTemplate(t)
	doc := operationsDoc(t)
	for name, a := range s.cf.GetAllCloudWatchAlarmResources() {
		short, _ := strings.CutPrefix(deref(a.AlarmName), "!Sub ${AWS::StackName}-")
		if !strings.Contains(doc, "### "+short+"\n") {
			t.Errorf("alarm %s: no runbook section \"### %s\"", name, short)
		}
		if !strings.Contains(deref(a.AlarmDescription), "docs/operations.md") {
			t.Errorf("alarm %s: its description does not point to docs/operations.md", name)
		}
	}
	for _, w := range s.dashboard(t) {
		if w.Type != "text" && !strings.Contains(doc, "**"+w.title()+"**") {
			t.Errorf("dashboard widget %q is not explained (as **%s**)", w.title(), w.title())
		}
	}
	// The access log's fields, as the doc's table and queries name them.
	for _, st := range s.cf.GetAllApiGatewayV2StageResources() {
		if st.AccessLogSettings == nil {
			continue
		}
		var fields map[string]string
		if err := json.Unmarshal([]byte(deref(st.AccessLogSettings.Format)), &fields); err != nil {
			t.Fatal(err)
		}
		for k := range fields {
			if !strings.Contains(doc, "`"+k+"`") {
				t.Errorf("the access log field %s is not described", k)
			}
		}
	}
	for _, out := range []string{"AlarmTopicArn", "DashboardName", "AccessLogGroupName", "DeadLetterQueueUrl", "KeepaliveFailureQueueUrl",
		"BackfillQueueUrl", "BackfillDeadLetterQueueUrl"} {
		if _, ok := s.cf.Outputs[out]; !ok {
			t.Errorf("docs/operations.md names the output %s, which the template lacks", out)
		}
		if !strings.Contains(doc, out) {
			t.Errorf("docs/operations.md does not say where %s leads", out)
		}
	}
	for _, want := range []string{"ejmautic redrive", "ejmautic status --all", "api_keys", "link_key", "Logs Insights", "routeKey",
		"lambdaRequestId"} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/operations.md does not mention %s", want)
		}
	}
	for _, f := range []string{"README.md", filepath.Join("docs", "deploy.md")} {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "docs/operations.md") {
			t.Errorf("%s does not link docs/operations.md", f)
		}
	}
}
