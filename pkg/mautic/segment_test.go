package mautic_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

// The product's segment path (tag, segment by alias, contacts in it at
// once), over HTTP against the simulated Mautic 5.1 and 7.0.
func TestSimTagsAndSegments(t *testing.T) {
	for _, version := range []string{"5.1", "7.0"} {
		t.Run(version, func(t *testing.T) {
			srv := mautictest.NewServer(mautictest.Options{Version: version})
			t.Cleanup(srv.Close)
			c := simClient(t, srv, 10*time.Second)
			ctx := context.Background()

			tag, err := c.EnsureTag(ctx, "ej-conversation-42")
			if err != nil || tag.ID == 0 || tag.Name != "ej-conversation-42" {
				t.Fatalf("EnsureTag() = %+v, %v; want a new tag", tag, err)
			}
			again, err := c.EnsureTag(ctx, "EJ-Conversation-42")
			if err != nil || again != tag {
				t.Errorf("EnsureTag(other case) = %+v, %v; want the same tag %+v (200)", again, err, tag)
			}
			if _, err := c.EnsureTag(ctx, " "); mautic.KindOf(err) != mautic.KindPermanent {
				t.Errorf("EnsureTag(blank) error = %v, want KindPermanent before any call", err)
			}

			if _, found, err := c.FindSegmentByAlias(ctx, "ej-conversation-42"); found || err != nil {
				t.Fatalf("FindSegmentByAlias() before creation = found %v, %v; want not found", found, err)
			}
			in := mautic.SegmentInput{Name: "EJ: conversa 42", Alias: "ej-conversation-42", Description: "Participantes da conversa",
				Filters: []mautic.SegmentFilter{mautic.TagFilter(tag.ID)}}
			seg, err := c.CreateSegment(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			want := mautic.Segment{ID: seg.ID, Name: in.Name, Alias: "ej-conversation-42", Description: in.Description, Published: true,
				Filters: []mautic.SegmentFilter{{Glue: "and", Field: "tags", Object: "lead", Type: "tags", Operator: "in", Values: []string{fmt.Sprint(tag.ID)}}}}
			if fmt.Sprintf("%+v", seg) != fmt.Sprintf("%+v", want) {
				t.Errorf("CreateSegment() = %+v, want %+v", seg, want)
			}
			// A second create is not idempotent: a suffixed alias.
			dup, err := c.CreateSegment(ctx, in)
			if err != nil || dup.Alias != "ej-conversation-421" || dup.ID == seg.ID {
				t.Errorf("CreateSegment(same alias) = %+v, %v; want a second segment aliased ej-conversation-421", dup, err)
			}
			// The prefix alias and the suffixed one do not confuse the look-up.
			got, found, err := c.FindSegmentByAlias(ctx, "ej-conversation-42")
			if err != nil || !found || got.ID != seg.ID {
				t.Errorf("FindSegmentByAlias() = %+v, %v, %v; want segment %d", got, found, err, seg.ID)
			}
			if _, found, err := c.FindSegmentByAlias(ctx, "ej-conversation-4"); found || err != nil {
				t.Errorf("FindSegmentByAlias(prefix) = found %v, %v; want not found", found, err)
			}

			var ids []int
			for i := range 3 {
				ct, _, err := c.CreateContact(ctx, mautic.ContactInput{Phone: fmt.Sprintf("+556199999%04d", i), Tags: []string{"ej-conversation-42"}})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, ct.ID)
			}
			res, err := c.SearchContacts(ctx, mautic.Query{Search: "segment:ej-conversation-42"})
			if err != nil || res.Total != 0 {
				t.Fatalf("segment members before AddToSegment: %d, %v; want 0 (only the segment job would fill it)", res.Total, err)
			}
			if err := c.AddToSegment(ctx, seg.ID, append(ids, ids[0])); err != nil {
				t.Fatalf("AddToSegment() error = %v", err)
			}
			res, err = c.SearchContacts(ctx, mautic.Query{Search: "segment:ej-conversation-42", Minimal: true})
			if err != nil || res.Total != 3 {
				t.Fatalf("segment members after AddToSegment: %d, %v; want 3", res.Total, err)
			}
			if n := srv.Stats().Requests["POST /api/segments/{id}/contacts/add"]; n != 1 {
				t.Errorf("contacts/add calls = %d, want 1", n)
			}
		})
	}
}

func TestSimAddToSegmentBatchesAndFailures(t *testing.T) {
	srv := startSim(t)
	c := simClient(t, srv, 30*time.Second)
	c.BatchLimit = 4
	ctx := context.Background()
	seg, err := c.CreateSegment(ctx, mautic.SegmentInput{Name: "batch"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for i := range 9 {
		ct, _, err := c.CreateContact(ctx, mautic.ContactInput{Phone: fmt.Sprintf("+556188888%04d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ct.ID)
	}
	withMissing := append(slices.Clone(ids[:5]), 999001, 999002)
	withMissing = append(withMissing, ids[5:]...)
	err = c.AddToSegment(ctx, seg.ID, withMissing)
	var ae *mautic.APIError
	if !errors.As(err, &ae) || ae.Kind != mautic.KindNotFound || !slices.Equal(ae.Details["ids"], []string{"999001", "999002"}) {
		t.Fatalf("AddToSegment(with two missing) error = %#v, want KindNotFound listing 999001 and 999002", err)
	}
	if !strings.Contains(ae.Error(), "2 of 11 contacts not added") {
		t.Errorf("error text = %q", ae.Error())
	}
	if n := srv.Stats().Requests["POST /api/segments/{id}/contacts/add"]; n != 3 {
		t.Errorf("contacts/add calls = %d, want 3 (4+4+3)", n)
	}
	for _, g := range srv.Segments() {
		if g.ID == seg.ID && !slices.Equal(g.Members, ids) {
			t.Errorf("members = %v, want %v", g.Members, ids)
		}
	}

	if err := c.AddToSegment(ctx, 999, ids[:1]); !mautic.IsNotFound(err) || !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Errorf("AddToSegment(missing segment) error = %v, want a 404", err)
	}
	off, err := c.CreateSegment(ctx, mautic.SegmentInput{Name: "off", Unpublished: true})
	if err != nil || off.Published {
		t.Fatalf("CreateSegment(unpublished) = %+v, %v", off, err)
	}
	if err := c.AddToSegment(ctx, off.ID, ids[:1]); mautic.KindOf(err) != mautic.KindPermanent || !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Errorf("AddToSegment(unpublished) error = %v, want a permanent 403", err)
	}
	if err := c.AddToSegment(ctx, seg.ID, nil); err != nil {
		t.Errorf("AddToSegment(no ids) error = %v, want nil and no call", err)
	}
	for _, bad := range [][]int{{0}, {ids[0], -1}} {
		if err := c.AddToSegment(ctx, seg.ID, bad); mautic.KindOf(err) != mautic.KindPermanent {
			t.Errorf("AddToSegment(%v) error = %v, want KindPermanent", bad, err)
		}
	}
	if err := c.AddToSegment(ctx, 0, ids); mautic.KindOf(err) != mautic.KindPermanent {
		t.Errorf("AddToSegment(segment 0) error = %v, want KindPermanent", err)
	}
}

func TestSimCreateSegmentErrors(t *testing.T) {
	srv := startSim(t)
	c := simClient(t, srv, 10*time.Second)
	ctx := context.Background()
	_, err := c.CreateSegment(ctx, mautic.SegmentInput{Name: "x", Filters: []mautic.SegmentFilter{mautic.TagFilter()}})
	var ae *mautic.APIError
	if !errors.As(err, &ae) || ae.Kind != mautic.KindPermanent || ae.Status != 400 || ae.Message != "filter: A value is required." ||
		!slices.Equal(ae.Details["filter"], []string{"A value is required."}) || ae.MauticVersion != "5.1.0" {
		t.Errorf("CreateSegment(empty tag filter) error = %#v, want the 400 with details", err)
	}
	if _, err := c.CreateSegment(ctx, mautic.SegmentInput{}); mautic.KindOf(err) != mautic.KindPermanent {
		t.Errorf("CreateSegment(no name) error = %v, want KindPermanent", err)
	}
	seg, err := c.CreateSegment(ctx, mautic.SegmentInput{Name: "Nobody tagged", Global: true,
		Filters: []mautic.SegmentFilter{{Field: "tags", Type: "tags", Operator: "empty"}, {Glue: "or", Field: "email", Type: "email", Operator: "=", Value: "a@example.org"}}})
	if err != nil {
		t.Fatal(err)
	}
	if seg.Alias != "nobody-tagged" || !seg.Global || len(seg.Filters) != 2 || seg.Filters[1].Value != "a@example.org" || seg.Filters[1].Values != nil || seg.Filters[0].Glue != "and" {
		t.Errorf("CreateSegment() = %+v", seg)
	}
	if _, _, err := c.FindSegmentByAlias(ctx, ""); mautic.KindOf(err) != mautic.KindPermanent {
		t.Errorf("FindSegmentByAlias(\"\") error = %v, want KindPermanent", err)
	}
}

// Answers a real Mautic could give that the simulator does not: lists as a
// JSON list, a near-miss alias, details missing an id.
func TestSegmentAnswerShapes(t *testing.T) {
	var answer string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(answer))
	}))
	t.Cleanup(ts.Close)
	c, err := mautic.NewClient(ts.URL, &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	answer = `{"total":3,"lists":[{"id":7,"alias":"EJ-1","name":"x"},{"id":9,"alias":"ej-1","name":"b","isPublished":"1"},{"id":8,"alias":"ej-1","name":"a","isPublished":true}]}`
	s, found, err := c.FindSegmentByAlias(ctx, "ej-1")
	if err != nil || !found || s.ID != 8 || s.Name != "a" || !s.Published {
		t.Errorf("FindSegmentByAlias() = %+v, %v, %v; want id 8 (lowest exact match)", s, found, err)
	}
	answer = `{"total":0,"lists":[]}`
	if _, found, err := c.FindSegmentByAlias(ctx, "ej-1"); found || err != nil {
		t.Errorf("FindSegmentByAlias(empty list) = %v, %v", found, err)
	}
	answer = `{"success":1,"details":{"5":{"success":true}}}`
	err = c.AddToSegment(ctx, 1, []int{5, 6})
	var ae *mautic.APIError
	if !errors.As(err, &ae) || !slices.Equal(ae.Details["ids"], []string{"6"}) {
		t.Errorf("AddToSegment(details without 6) error = %v, want 6 reported", err)
	}
	answer = `{"tag":{"id":null}}`
	if _, err := c.EnsureTag(ctx, "x"); mautic.KindOf(err) != mautic.KindPermanent {
		t.Errorf("EnsureTag(answer without id) error = %v, want KindPermanent", err)
	}
	answer = `{"errors":[{"message":"The access token provided has expired.","code":401,"type":"invalid_grant"}]}`
	if _, err := c.EnsureTag(ctx, "x"); mautic.KindOf(err) != mautic.KindTokenInvalid {
		t.Errorf("EnsureTag(200 with errors) error = %v, want KindTokenInvalid", err)
	}
}
