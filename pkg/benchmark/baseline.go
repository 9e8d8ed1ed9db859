package benchmark

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/phone"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// BaselineResult is what the EJ-style path did.
type BaselineResult struct {
	Votes    int           `json:"votes"`    // distinct votes handled
	Of       int           `json:"of"`       // distinct votes in the workload
	Requests int           `json:"requests"` // HTTP requests made
	Created  int           `json:"created"`  // contacts created
	Elapsed  time.Duration `json:"elapsed_ns"`
	// VotesPerSec is Votes / Elapsed.
	VotesPerSec float64 `json:"votes_per_sec"`
	// Budget is the time budget it ran under.
	Budget time.Duration `json:"budget_ns"`
	// Mautic counts the calls Mautic received, by endpoint.
	Mautic map[string]int `json:"mautic_calls,omitempty"`
}

// Baseline is the path EJ would take without ej-mautic: for each distinct
// vote of bodies, in order and one request at a time, search the
// participant's contact by phone (GET /api/contacts?where…) and create it
// when missing (POST /api/contacts/new), with a plain http.Client and a
// valid access token. It stops when budget has passed (when > 0) or the
// votes run out. progress, when set, gets the number of votes handled.
// The result's Of is left to the caller, who knows the workload.
func Baseline(ctx context.Context, mauticURL, accessToken string, bodies [][]byte, budget time.Duration, progress func(int)) (BaselineResult, error) {
	hc := &http.Client{Timeout: 30 * time.Second}
	res := BaselineResult{Budget: budget}
	do := func(req *http.Request) ([]byte, error) {
		req.Header.Set("Authorization", "Bearer "+accessToken)
		req.Header.Set("Accept", "application/json")
		res.Requests++
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("%s %s: HTTP %d", req.Method, req.URL.Path, resp.StatusCode)
		}
		return data, nil
	}
	seen := map[string]bool{}
	start := time.Now()
	for _, body := range bodies {
		if budget > 0 && time.Since(start) >= budget {
			break
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		vs, err := votes.Decode(body)
		if err != nil {
			return res, fmt.Errorf("baseline: %w", err)
		}
		for _, v := range vs {
			if seen[v.VoteID] {
				continue // EJ calls Mautic once per vote: no redelivery
			}
			seen[v.VoteID] = true
			if err := baselineVote(ctx, mauticURL, v, do, &res); err != nil {
				return res, err
			}
			res.Votes++
			if progress != nil {
				progress(res.Votes)
			}
		}
	}
	res.Elapsed = time.Since(start)
	if res.Elapsed > 0 {
		res.VotesPerSec = float64(res.Votes) / res.Elapsed.Seconds()
	}
	return res, nil
}

// baselineVote searches v's participant by phone and creates the contact
// when there is none.
func baselineVote(ctx context.Context, mauticURL string, v votes.Vote, do func(*http.Request) ([]byte, error), res *BaselineResult) error {
	phone, ok := phone.Normalize(v.Participant.Phone, "BR")
	if !ok {
		return nil
	}
	q := url.Values{"where[0][col]": {"phone"}, "where[0][expr]": {"eq"}, "where[0][val]": {phone}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, mauticURL+"/api/contacts?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	data, err := do(req)
	if err != nil {
		return fmt.Errorf("baseline search: %w", err)
	}
	var found struct {
		Total json.RawMessage `json:"total"`
	}
	if err := json.Unmarshal(data, &found); err != nil {
		return fmt.Errorf("baseline search: %w", err)
	}
	if n, _ := strconv.Atoi(string(bytes.Trim(found.Total, `"`))); n > 0 {
		return nil
	}
	body, err := json.Marshal(map[string]any{
		"firstname": v.Participant.Name, "email": v.Participant.Email, "phone": phone,
		"tags": []string{"ej", "ej-baseline"}, "lastActive": v.VotedAt.UTC().Format("2006-01-02 15:04:05"),
	})
	if err != nil {
		return err
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, mauticURL+"/api/contacts/new", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if _, err := do(req); err != nil {
		return fmt.Errorf("baseline create: %w", err)
	}
	res.Created++
	return nil
}
