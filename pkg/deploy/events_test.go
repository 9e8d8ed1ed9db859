package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ejplatform/ej-mautic/pkg/connect"
	"github.com/ejplatform/ej-mautic/pkg/httpapi"
)

// eventFiles are the events/*.json that `sam local invoke -e` takes, by
// the function they are for.
var eventFiles = map[string]string{
	"connections-put.json":    "ConnectionsFunction",
	"connections-get.json":    "ConnectionsFunction",
	"connections-delete.json": "ConnectionsFunction",
	"authorize.json":          "AuthorizeFunction",
	"callback.json":           "CallbackFunction",
	"votes-sqs.json":          "VotesFunction",
	"keepalive-schedule.json": "KeepaliveFunction",
}

// loadEvent reads events/<name> as a JSON object.
func loadEvent(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("events/%s: %v", name, err)
	}
	return ev
}

// TestEvents checks the sample events: every function has some, each API
// event is an HTTP API payload 2.0 request on a route of the template that
// goes to its function, and the SQS and schedule events have the shapes
// Lambda delivers.
func TestEvents(t *testing.T) {
	s := loadTemplate(t)
	routeFn := map[string]string{} // route key → function, from the template
	integFn := map[string]string{}
	for name, in := range s.cf.GetAllApiGatewayV2IntegrationResources() {
		fn, _ := strings.CutPrefix(deref(in.IntegrationUri), "!GetAtt ")
		integFn[name], _ = strings.CutSuffix(fn, ".Arn")
	}
	for _, r := range s.cf.GetAllApiGatewayV2RouteResources() {
		integ := strings.TrimSuffix(strings.TrimPrefix(deref(r.Target), "!Sub integrations/${"), "}")
		routeFn[r.RouteKey] = integFn[integ]
	}

	entries, err := os.ReadDir(filepath.Join(repoRoot(t), "events"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	for name := range eventFiles {
		if !slices.Contains(names, name) {
			t.Errorf("events/%s is missing", name)
		}
	}
	for _, name := range names {
		if _, ok := eventFiles[name]; !ok {
			t.Errorf("events/%s is not one this test knows", name)
		}
	}
	covered := map[string]bool{}
	for name, fn := range eventFiles {
		covered[fn] = true
		t.Run(name, func(t *testing.T) {
			ev := loadEvent(t, name)
			switch fn {
			case "VotesFunction":
				checkSQSEvent(t, ev)
			case "KeepaliveFunction":
				if ev["detail-type"] != "Scheduled Event" || ev["source"] != "aws.events" {
					t.Errorf("detail-type %v, source %v; want an EventBridge Scheduled Event", ev["detail-type"], ev["source"])
				}
			default:
				checkAPIEvent(t, ev, fn, routeFn)
			}
		})
	}
	for _, f := range functions {
		if !covered[f.id] {
			t.Errorf("no event for %s", f.id)
		}
	}
}

func checkAPIEvent(t *testing.T, ev map[string]any, fn string, routeFn map[string]string) {
	t.Helper()
	route, _ := ev["routeKey"].(string)
	if ev["version"] != "2.0" {
		t.Errorf("version = %v, want 2.0 (HTTP API payload 2.0)", ev["version"])
	}
	if got := routeFn[route]; got != fn {
		t.Errorf("routeKey %q goes to %q in the template, want %s", route, got, fn)
	}
	if rc := dig(ev, "requestContext", "routeKey"); rc != route {
		t.Errorf("requestContext.routeKey = %v, want %q", rc, route)
	}
	method, pattern, _ := strings.Cut(route, " ")
	if m := dig(ev, "requestContext", "http", "method"); m != method {
		t.Errorf("requestContext.http.method = %v, want %s", m, method)
	}
	id, _ := dig(ev, "pathParameters", "conversation_id").(string)
	if id == "" {
		t.Error("pathParameters.conversation_id is missing")
	}
	if want := strings.ReplaceAll(pattern, "{conversation_id}", id); ev["rawPath"] != want || dig(ev, "requestContext", "http", "path") != want {
		t.Errorf("rawPath %v, requestContext.http.path %v; want %s", ev["rawPath"], dig(ev, "requestContext", "http", "path"), want)
	}
	auth, _ := dig(ev, "headers", "authorization").(string)
	switch pattern {
	case httpapi.RouteConnection:
		if !strings.HasPrefix(auth, "Bearer ") {
			t.Errorf("authorization header = %q, want Bearer <api key>", auth)
		}
		if method == "PUT" {
			var req connect.RegisterRequest
			body, _ := ev["body"].(string)
			if err := json.Unmarshal([]byte(body), &req); err != nil || req.MauticURL == "" || req.ClientID == "" || req.ClientSecret == "" {
				t.Errorf("body %q is not a registration (%v)", body, err)
			}
		}
	case httpapi.RouteAuthorize:
		if auth != "" {
			t.Error("the browser's authorize request carries an Authorization header")
		}
		if q, _ := ev["rawQueryString"].(string); !strings.HasPrefix(q, "link=") {
			t.Errorf("rawQueryString = %q, want link=…", q)
		}
	case httpapi.RouteCallback:
		cookies, _ := ev["cookies"].([]any)
		if len(cookies) != 1 || !strings.HasPrefix(cookies[0].(string), connect.StateCookieName+"=") {
			t.Errorf("cookies = %v, want the %s cookie (payload 2.0 puts cookies there, not in headers)", cookies, connect.StateCookieName)
		}
		if q, _ := ev["rawQueryString"].(string); !strings.Contains(q, "code=") || !strings.Contains(q, "state=") {
			t.Errorf("rawQueryString = %q, want code and state", q)
		}
	default:
		t.Errorf("route %q is not one of docs/design.md's", route)
	}
}

func checkSQSEvent(t *testing.T, ev map[string]any) {
	t.Helper()
	records, _ := ev["Records"].([]any)
	if len(records) < 3 {
		t.Fatalf("%d records, want a few", len(records))
	}
	var arrays, malformed int
	ids := map[string]bool{}
	for i, r := range records {
		if dig(r, "eventSource") != "aws:sqs" {
			t.Errorf("record %d eventSource = %v, want aws:sqs", i, dig(r, "eventSource"))
		}
		id, _ := dig(r, "messageId").(string)
		if id == "" || ids[id] {
			t.Errorf("record %d messageId %q is empty or repeated", i, id)
		}
		ids[id] = true
		if dig(r, "attributes", "ApproximateReceiveCount") == nil {
			t.Errorf("record %d has no ApproximateReceiveCount", i)
		}
		body, _ := dig(r, "body").(string)
		var v any
		switch {
		case json.Unmarshal([]byte(body), &v) != nil:
			malformed++
		case strings.HasPrefix(strings.TrimSpace(body), "["):
			arrays++
		}
	}
	if arrays == 0 || malformed == 0 {
		t.Errorf("%d array bodies and %d malformed ones; want at least one of each", arrays, malformed)
	}
}
