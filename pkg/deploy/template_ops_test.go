package deploy

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/metrics"
)

// The operators' promises of template.yaml: access logs, what a stack
// deletion keeps, alarms that always notify someone, the keepalive's
// failures, the API functions' concurrency and the dashboard.

// TestTemplateAccessLog checks that the HTTP API stage writes a JSON
// access log with what an operator needs and nothing that may hold a
// secret: signed links and OAuth codes travel in query strings.
func TestTemplateAccessLog(t *testing.T) {
	s := loadTemplate(t)
	var stageName string
	for name, st := range s.cf.GetAllApiGatewayV2StageResources() {
		if st.ApiId == "!Ref HttpApi" && st.StageName == "$default" {
			stageName = name
		}
	}
	if stageName == "" {
		t.Fatal("no $default stage on HttpApi")
	}
	st := s.cf.GetAllApiGatewayV2StageResources()[stageName]
	if st.AccessLogSettings == nil || st.AccessLogSettings.DestinationArn == nil || st.AccessLogSettings.Format == nil {
		t.Fatalf("%s has no AccessLogSettings with DestinationArn and Format", stageName)
	}
	group, ok := strings.CutPrefix(*st.AccessLogSettings.DestinationArn, "!GetAtt ")
	group, ok2 := strings.CutSuffix(group, ".Arn")
	lg, err := s.cf.GetLogsLogGroupWithName(group)
	if !ok || !ok2 || err != nil {
		t.Fatalf("DestinationArn = %s, want !GetAtt <a log group of this template>.Arn", *st.AccessLogSettings.DestinationArn)
	}
	if got := text(node(s.raw, "Resources", group, "Properties", "RetentionInDays")); got != "!Ref LogRetentionDays" {
		t.Errorf("%s RetentionInDays = %s, want !Ref LogRetentionDays", group, got)
	}
	if lg.LogGroupName == nil || !strings.Contains(*lg.LogGroupName, "${AWS::StackName}") {
		t.Errorf("%s LogGroupName = %s, want one named after the stack", group, deref(lg.LogGroupName))
	}

	format := *st.AccessLogSettings.Format
	var fields map[string]string
	if err := json.Unmarshal([]byte(format), &fields); err != nil {
		t.Fatalf("Format is not a JSON object of strings (every value quoted, so that a \"-\" stays valid): %v\n%s", err, format)
	}
	for _, want := range []string{"$context.requestId", "$context.routeKey", "$context.status", "$context.responseLatency",
		"$context.integrationErrorMessage", "$context.integration.requestId"} {
		if !slices.Contains(slices.Collect(maps.Values(fields)), want) {
			t.Errorf("Format lacks %s", want)
		}
	}
	// Every value is one variable; none that carries a query string, a
	// header or a request override.
	variable := regexp.MustCompile(`^\$context\.[A-Za-z0-9.]+$`)
	forbidden := regexp.MustCompile(`(?i)^\$context\.(path|requestOverride\..*|.*querystring.*|.*header.*|authorizer\..*)$`)
	for k, v := range fields {
		if !variable.MatchString(v) {
			t.Errorf("Format %s = %q, want exactly one $context variable", k, v)
		}
		if forbidden.MatchString(v) {
			t.Errorf("Format %s = %s: it may carry a signed link, an OAuth code or a key; use $context.routeKey", k, v)
		}
	}
	for _, bad := range []string{"$context.path", "requestOverride", "$input", "$stageVariables"} {
		if strings.Contains(format, bad) {
			t.Errorf("Format holds %s", bad)
		}
	}
}

// statefulTypes are the resource types whose deletion loses data.
var statefulTypes = []string{"AWS::DynamoDB::Table", "AWS::SecretsManager::Secret", "AWS::Logs::LogGroup", "AWS::SQS::Queue"}

// TestTemplateDeletionPolicies checks that every stateful resource says
// what a stack deletion or a replacement does to it: Retain for the
// table and the app secret, and for the others a choice explained in a
// comment.
func TestTemplateDeletionPolicies(t *testing.T) {
	s := loadTemplate(t)
	resources := node(s.raw, "Resources")
	headComments := map[string]string{} // resource → the comment above it
	for i := 0; i+1 < len(resources.Content); i += 2 {
		headComments[resources.Content[i].Value] = resources.Content[i].HeadComment
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		key, res := resources.Content[i], resources.Content[i+1]
		name := key.Value
		if !slices.Contains(statefulTypes, text(node(res, "Type"))) {
			continue
		}
		seen[text(node(res, "Type"))] = true
		del, repl := node(res, "DeletionPolicy"), node(res, "UpdateReplacePolicy")
		if del == nil || repl == nil {
			t.Errorf("%s: DeletionPolicy %s, UpdateReplacePolicy %s; want both set", name, text(del), text(repl))
			continue
		}
		if del.Value != repl.Value {
			t.Errorf("%s: DeletionPolicy %s but UpdateReplacePolicy %s", name, del.Value, repl.Value)
		}
		if name == "Table" || name == "AppSecret" {
			if del.Value != "Retain" || repl.Value != "Retain" {
				t.Errorf("%s: DeletionPolicy %s, UpdateReplacePolicy %s; want Retain (EJ's keys, the service's state)", name, del.Value, repl.Value)
			}
		} else if del.Value != "Delete" && del.Value != "Retain" && del.Value != "Snapshot" {
			t.Errorf("%s: DeletionPolicy %q", name, del.Value)
		}
		// The choice is written down: in a comment above the resource, or
		// beside the policy pointing to one ("# see X").
		// X is a resource, or a label in a comment ("# X: …").
		comment := key.HeadComment
		if ref := regexp.MustCompile(`see (\w+)`).FindStringSubmatch(del.LineComment); ref != nil {
			comment = headComments[ref[1]]
			for _, hc := range headComments {
				if strings.Contains(hc, "# "+ref[1]+":") {
					comment = hc
				}
			}
		}
		if !strings.Contains(comment, "DeletionPolicy") {
			t.Errorf("%s: DeletionPolicy %s without a comment saying why (above the resource, or \"# see X\" beside it)", name, del.Value)
		}
	}
	for _, typ := range statefulTypes {
		if !seen[typ] {
			t.Errorf("no %s in the template: is statefulTypes stale?", typ)
		}
	}
}

// TestTemplateAlarms checks the alarm topic and the six alarms: what each
// watches, and that each notifies the topic whatever the parameters.
func TestTemplateAlarms(t *testing.T) {
	s := loadTemplate(t)
	topics := s.cf.GetAllSNSTopicResources()
	if len(topics) != 1 || topics["AlarmTopic"] == nil {
		t.Fatalf("SNS topics %v, want AlarmTopic alone", slices.Collect(maps.Keys(topics)))
	}
	if c := topics["AlarmTopic"].AWSCloudFormationCondition; c != "" {
		t.Errorf("AlarmTopic has Condition %s; it must always exist, so that every alarm notifies it", c)
	}
	subs := s.cf.GetAllSNSSubscriptionResources()
	if len(subs) != 1 {
		t.Fatalf("%d SNS subscriptions, want the e-mail one", len(subs))
	}
	for name, sub := range subs {
		if sub.AWSCloudFormationCondition != "HasAlarmEmail" || sub.Protocol != "email" || deref(sub.Endpoint) != "!Ref AlarmEmail" ||
			sub.TopicArn != "!Ref AlarmTopic" {
			t.Errorf("subscription %s: condition %q, protocol %s, endpoint %s, topic %s; want HasAlarmEmail, email, !Ref AlarmEmail, !Ref AlarmTopic",
				name, sub.AWSCloudFormationCondition, sub.Protocol, deref(sub.Endpoint), sub.TopicArn)
		}
	}
	if got := text(node(s.raw, "Conditions", "HasAlarmEmail")); got != `!Not [!Equals [!Ref AlarmEmail, ]]` {
		t.Errorf("Conditions.HasAlarmEmail = %s, want !Not [!Equals [!Ref AlarmEmail, \"\"]]", got)
	}

	emitted := emittedMetrics(t)
	alarms := s.cf.GetAllCloudWatchAlarmResources()
	for name, a := range alarms {
		t.Run(name, func(t *testing.T) {
			for _, c := range []struct{ what, got string }{
				{"AlarmActions", text(node(s.raw, "Resources", name, "Properties", "AlarmActions"))},
				{"OKActions", text(node(s.raw, "Resources", name, "Properties", "OKActions"))},
			} {
				if c.got != "[!Ref AlarmTopic]" {
					t.Errorf("%s = %s, want [!Ref AlarmTopic] whatever the parameters", c.what, c.got)
				}
			}
			if a.AWSCloudFormationCondition != "" {
				t.Errorf("Condition %s; every alarm always exists", a.AWSCloudFormationCondition)
			}
			if p := deref(a.Period); p == 0 || p*a.EvaluationPeriods > 86400 {
				t.Errorf("Period %d × EvaluationPeriods %d is over CloudWatch's one day", p, a.EvaluationPeriods)
			}
			checkMetricRef(t, s, emitted, alarmMetric(s, name))
			if !strings.HasPrefix(deref(a.AlarmName), "!Sub ${AWS::StackName}-") {
				t.Errorf("AlarmName = %s, want !Sub ${AWS::StackName}-<name>", deref(a.AlarmName))
			}
			if !strings.Contains(deref(a.AlarmDescription), "docs/operations.md") {
				t.Errorf("AlarmDescription does not point to the runbook, docs/operations.md")
			}
		})
	}

	// What must be watched, and how.
	for _, c := range []struct {
		what                   string
		ref                    string // metricRef.String() of the alarm's metric
		stat                   string
		threshold              float64
		missing                string
		comparison, periodHint string
	}{
		{what: "dead letters", ref: "AWS/SQS ApproximateNumberOfMessagesVisible{QueueName=!GetAtt DeadLetterQueue.QueueName}",
			stat: "Maximum", threshold: 1, missing: "notBreaching"},
		{what: "backfill dead letters", ref: "AWS/SQS ApproximateNumberOfMessagesVisible{QueueName=!GetAtt BackfillDeadLetterQueue.QueueName}",
			stat: "Maximum", threshold: 1, missing: "notBreaching"},
		// Valid votes still failing after RETRY_HORIZON are parked as
		// stuck, never dead-lettered: the votes function counts them.
		{what: "stuck votes", ref: fmt.Sprintf("%s VotesStuck{%s=votes}", metrics.Namespace, metrics.DimFunction),
			stat: "Sum", threshold: 1, missing: "notBreaching"},
		{what: "votes function errors", ref: "AWS/Lambda Errors{FunctionName=!Ref VotesFunction}",
			stat: "Sum", threshold: 1, missing: "notBreaching"},
		{what: "keepalive runs failed after Lambda's retries", ref: "AWS/SQS ApproximateNumberOfMessagesVisible{QueueName=!GetAtt KeepaliveFailureQueue.QueueName}",
			stat: "Maximum", threshold: 1, missing: "notBreaching"},
		// Emitted once a day: the other hours keep the last run's state.
		{what: "connections needing re-authorization", ref: fmt.Sprintf("%s %s{%s=keepalive,%s=%s}", metrics.Namespace, metrics.Connections,
			metrics.DimFunction, metrics.DimStatus, connection.StatusNeedsReauthorization),
			stat: "Maximum", threshold: 1, missing: "ignore"},
	} {
		var found int
		for name, a := range alarms {
			if alarmMetric(s, name).String() != c.ref {
				continue
			}
			found++
			if deref(a.Statistic) != c.stat || deref(a.Threshold) != c.threshold || a.ComparisonOperator != "GreaterThanOrEqualToThreshold" ||
				deref(a.TreatMissingData) != c.missing {
				t.Errorf("%s (%s): %s %s %v, missing data %s; want %s ≥ %v, %s", name, c.what, deref(a.Statistic), a.ComparisonOperator,
					deref(a.Threshold), deref(a.TreatMissingData), c.stat, c.threshold, c.missing)
			}
		}
		if found != 1 {
			t.Errorf("%d alarms on %s (%s), want 1", found, c.what, c.ref)
		}
	}
	if len(alarms) != 6 {
		t.Errorf("%d alarms, want the 6 of docs/operations.md", len(alarms))
	}
}

// TestTemplateKeepaliveFailures checks that a keepalive run that fails
// after Lambda's retries lands in a queue (which an alarm watches) instead
// of being dropped.
func TestTemplateKeepaliveFailures(t *testing.T) {
	s := loadTemplate(t)
	configs := s.cf.GetAllLambdaEventInvokeConfigResources()
	if len(configs) != 1 {
		t.Fatalf("%d EventInvokeConfigs, want the keepalive's", len(configs))
	}
	for name, c := range configs {
		if c.FunctionName != "!Ref KeepaliveFunction" || c.Qualifier != "$LATEST" {
			t.Errorf("%s: function %s, qualifier %s; want !Ref KeepaliveFunction, $LATEST", name, c.FunctionName, c.Qualifier)
		}
		if c.DestinationConfig == nil || c.DestinationConfig.OnFailure == nil ||
			c.DestinationConfig.OnFailure.Destination != "!GetAtt KeepaliveFailureQueue.Arn" {
			t.Errorf("%s: DestinationConfig.OnFailure = %s, want !GetAtt KeepaliveFailureQueue.Arn", name,
				text(node(s.raw, "Resources", name, "Properties", "DestinationConfig")))
		}
		if r := deref(c.MaximumRetryAttempts); r < 1 || r > 2 {
			t.Errorf("%s: MaximumRetryAttempts %d, want 1 or 2", name, r)
		}
	}
	q, err := s.cf.GetSQSQueueWithName("KeepaliveFailureQueue")
	if err != nil {
		t.Fatal(err)
	}
	if q.SqsManagedSseEnabled == nil || !*q.SqsManagedSseEnabled {
		t.Error("KeepaliveFailureQueue: SqsManagedSseEnabled is not true")
	}
	if deref(q.MessageRetentionPeriod) != 1209600 {
		t.Errorf("KeepaliveFailureQueue keeps messages %d s, want the most SQS allows, 1209600 (14 days)", deref(q.MessageRetentionPeriod))
	}
	// The permission to send there is in iamMatrix (TestTemplateIAM): only
	// the keepalive may, and only there.
	if got := iamMatrix["KeepaliveFunction"][resKAFailed]; !slices.Equal(got, []string{"sqs:SendMessage"}) {
		t.Errorf("iamMatrix gives keepalive %v on its failure queue, want sqs:SendMessage", got)
	}
}

// TestTemplateReservedConcurrency checks the ceiling on the public API
// functions.
func TestTemplateReservedConcurrency(t *testing.T) {
	s := loadTemplate(t)
	p := s.cf.Parameters["ApiReservedConcurrency"]
	if p.MinValue == nil || *p.MinValue != 0 || p.MaxValue == nil || *p.MaxValue > 1000 || !strings.Contains(deref(p.Description), "0 reserves nothing") {
		t.Errorf("ApiReservedConcurrency: MinValue %v, MaxValue %v, description %q; want 0 (documented as no reservation) to ≤ 1000",
			deref(p.MinValue), deref(p.MaxValue), deref(p.Description))
	}
	if got := text(node(s.raw, "Conditions", "HasApiReservedConcurrency")); got != "!Not [!Equals [!Ref ApiReservedConcurrency, 0]]" {
		t.Errorf("Conditions.HasApiReservedConcurrency = %s", got)
	}
	for _, f := range functions {
		got := text(node(s.raw, "Resources", f.id, "Properties", "ReservedConcurrentExecutions"))
		switch f.id {
		case "ConnectionsFunction", "AuthorizeFunction", "CallbackFunction":
			if want := "!If [HasApiReservedConcurrency, !Ref ApiReservedConcurrency, !Ref AWS::NoValue]"; got != want {
				t.Errorf("%s ReservedConcurrentExecutions = %s, want %s", f.id, got, want)
			}
		default:
			// The votes function's concurrency is the queue's
			// MaximumConcurrency; the keepalive runs once a day.
			if got != "<missing>" {
				t.Errorf("%s ReservedConcurrentExecutions = %s, want none", f.id, got)
			}
		}
	}
	if got := text(node(s.raw, "Globals", "Function", "ReservedConcurrentExecutions")); got != "<missing>" {
		t.Errorf("Globals set ReservedConcurrentExecutions = %s: it would cap votes and keepalive too", got)
	}
}

// TestTemplateDashboard checks the dashboard: every metric it draws is
// emitted by the code (ej-mautic) or is an AWS metric of this stack's
// resources, it shows what operators were promised, and its widgets fit
// the grid.
func TestTemplateDashboard(t *testing.T) {
	s := loadTemplate(t)
	if n := len(s.cf.GetAllCloudWatchDashboardResources()); n != 1 {
		t.Fatalf("%d dashboards, want 1 named Dashboard", n)
	}
	widgets := s.dashboard(t)
	emitted := emittedMetrics(t)
	drawn := map[string]bool{} // metricRef.String()
	var alarmWidget bool
	for i, w := range widgets {
		t.Run(fmt.Sprintf("%d %s", i, w.title()), func(t *testing.T) {
			if w.X < 0 || w.Width < 1 || w.X+w.Width > 24 || w.Height < 1 {
				t.Errorf("x %d, width %d, height %d: outside the 24-column grid", w.X, w.Width, w.Height)
			}
			for j, o := range widgets[:i] {
				if w.X < o.X+o.Width && o.X < w.X+w.Width && w.Y < o.Y+o.Height && o.Y < w.Y+w.Height {
					t.Errorf("overlaps widget %d %q", j, o.title())
				}
			}
			switch w.Type {
			case "metric":
				if w.Properties["region"] != "${AWS::Region}" {
					t.Errorf("region = %v, want ${AWS::Region}", w.Properties["region"])
				}
				for _, r := range widgetMetrics(t, w) {
					checkMetricRef(t, s, emitted, r)
					drawn[r.String()] = true
				}
			case "alarm":
				alarmWidget = true
				got, _ := w.Properties["alarms"].([]any)
				var want []any
				for _, name := range slices.Sorted(maps.Keys(s.cf.GetAllCloudWatchAlarmResources())) {
					want = append(want, "${"+name+".Arn}")
				}
				slices.SortFunc(got, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
				if !slices.Equal(got, want) {
					t.Errorf("alarms = %v, want every alarm of the template %v", got, want)
				}
			case "log":
				q, _ := w.Properties["query"].(string)
				if !strings.HasPrefix(q, "SOURCE '${HttpApiAccessLogGroup}' |") {
					t.Errorf("query = %q, want one on the access log", q)
				}
				if w.Properties["region"] != "${AWS::Region}" {
					t.Errorf("region = %v, want ${AWS::Region}", w.Properties["region"])
				}
			case "text":
			default:
				t.Errorf("widget type %q", w.Type)
			}
		})
	}
	if !alarmWidget {
		t.Error("no alarm status widget")
	}

	// What operators were promised.
	votes := func(name string) string {
		return fmt.Sprintf("%s %s{%s=votes}", metrics.Namespace, name, metrics.DimFunction)
	}
	var want []string
	for _, n := range []string{"VotesSynced", "VotesSkipped", "VotesParked", "Retried", "DeadLettered",
		"ContactsCreated", "ContactsUpdated", metrics.MauticCalls} {
		want = append(want, votes(n))
	}
	values := dimensionValues()
	for _, k := range values[metrics.DimKind] {
		want = append(want, fmt.Sprintf("%s %s{%s=votes,%s=%s}", metrics.Namespace, metrics.MauticErrors, metrics.DimFunction, metrics.DimKind, k))
	}
	for _, st := range values[metrics.DimStatus] {
		want = append(want, fmt.Sprintf("%s %s{%s=keepalive,%s=%s}", metrics.Namespace, metrics.Connections, metrics.DimFunction, metrics.DimStatus, st))
	}
	want = append(want, "AWS/SQS ApproximateNumberOfMessagesVisible{QueueName=${DeadLetterQueue.QueueName}}",
		"AWS/SQS ApproximateNumberOfMessagesVisible{QueueName=${BackfillDeadLetterQueue.QueueName}}",
		"AWS/SQS ApproximateNumberOfMessagesVisible{QueueName=${BackfillQueue.QueueName}}",
		"AWS/SQS ApproximateAgeOfOldestMessage{QueueName=${BackfillQueue.QueueName}}")
	for _, f := range functions {
		want = append(want, "AWS/Lambda Errors{FunctionName=${"+f.id+"}}", "AWS/Lambda Duration{FunctionName=${"+f.id+"}}")
	}
	for _, w := range want {
		if !drawn[w] {
			t.Errorf("the dashboard does not draw %s", w)
		}
	}
}
