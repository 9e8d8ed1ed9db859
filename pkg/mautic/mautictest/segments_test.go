package mautictest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// assertJSONLike compares got with a captured body after edit adjusted the
// capture (ids, dates and names the simulator cannot share).
func assertJSONLike(t *testing.T, got []byte, file string, edit func(t *testing.T, got, want map[string]any)) {
	t.Helper()
	var g, w map[string]any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got body is not a JSON object: %v: %s", err, got)
	}
	if err := json.Unmarshal(transcript(t, file), &w); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if edit != nil {
		edit(t, g, w)
	}
	if !reflect.DeepEqual(g, w) {
		want, _ := json.Marshal(w)
		t.Errorf("body\n got: %s\nwant: %s (%s, adjusted)", got, want, file)
	}
}

func ccToken(t *testing.T, f *fixture) string {
	t.Helper()
	r := f.tokenRequest(url.Values{"client_id": {f.clientID}, "client_secret": {f.clientSecret}, "grant_type": {"client_credentials"}})
	checkStatus(t, r, http.StatusOK)
	assertSameKeys(t, r.body, "part3/b-client-credentials.json", nil)
	return r.json(t)["access_token"].(string)
}

const (
	capTag     = "ej-conversation-seg1796530747"
	capSegment = `{"name": "EJ: conversa seg1796530747", "alias": "ej-conversation-seg1796530747", "description": "Participantes da conversa", "isPublished": true, "isGlobal": false, "filters": [{"glue": "and", "field": "tags", "object": "lead", "type": "tags", "operator": "in", "properties": {"filter": [10]}}]}`
)

// Part 3 B (Mautic 5.1.0) and C (7.0.0: the same statuses), in capture
// order, with a client_credentials token. The simulator is seeded so that
// tag and segment ids line up with the capture: nine tags before (some
// implicit, from a contact's tags), one segment before.
func TestPart3TagsAndSegments(t *testing.T) {
	for _, version := range []string{"5.1", "7.0"} {
		t.Run(version, func(t *testing.T) {
			f := newFixture(t, Options{Version: version})
			token := ccToken(t, f)
			h := jsonHeader(token)
			do := func(method, path, body string, status int) *response {
				t.Helper()
				r := f.do(method, path, h, body)
				checkStatus(t, r, status)
				checkHeader(t, r, "Mautic-Version", version+".0")
				return r
			}
			do("POST", "/api/contacts/new", `{"email":"seed@example.org","tags":["ej","ej-conversation-4242","ej-conversation-7965293645"]}`, http.StatusCreated)
			for _, tg := range []string{"ej-conversation-7965295076", "ej-conversation-7965295758", "ej-conversation-7965296460", "cc-probe", "ej-conversation-cc1796529896", "x"} {
				do("POST", "/api/tags/new", `{"tag":"`+tg+`"}`, http.StatusCreated)
			}
			do("POST", "/api/segments/new", `{"name":"earlier"}`, http.StatusCreated)
			client := f.clientByPublicID(f.clientID)
			creator := fmt.Sprintf("%s [%d]", client.name, client.id)
			segmentLike := func(id float64, alias string) func(*testing.T, map[string]any, map[string]any) {
				return func(t *testing.T, got, want map[string]any) {
					l := want["list"].(map[string]any)
					l["id"], l["alias"], l["createdByUser"] = id, alias, creator
					added, _ := dig(got, "list", "dateAdded").(string)
					if at, err := time.Parse(time.RFC3339, added); err != nil || f.Now().Sub(at).Abs() > time.Minute {
						t.Errorf("dateAdded: got %q, want the simulator's time", added)
					}
					l["dateAdded"] = added
				}
			}

			t.Run("create a tag", func(t *testing.T) {
				r := do("POST", "/api/tags/new", `{"tag": "`+capTag+`"}`, http.StatusCreated)
				checkHeader(t, r, "Location", "/api/tags/10")
				assertSameJSON(t, r.body, "part3/b-tag-new.json")
			})
			t.Run("the same tag again", func(t *testing.T) {
				r := do("POST", "/api/tags/new", `{"tag": "`+capTag+`"}`, http.StatusOK)
				checkHeader(t, r, "Location", "")
				assertSameJSON(t, r.body, "part3/b-tag-again.json")
			})
			t.Run("find the tag: every tag comes back", func(t *testing.T) {
				r := do("GET", "/api/tags?search="+capTag, "", http.StatusOK)
				assertSameJSON(t, r.body, "part3/b-tags-search.json")
			})
			t.Run("create a segment filtered by the tag", func(t *testing.T) {
				r := do("POST", "/api/segments/new", capSegment, http.StatusCreated)
				checkHeader(t, r, "Location", "/api/segments/2")
				assertJSONLike(t, r.body, "part3/b-segment-new.json", segmentLike(2, capTag))
			})
			t.Run("the same alias again makes a second segment", func(t *testing.T) {
				r := do("POST", "/api/segments/new", capSegment, http.StatusCreated)
				checkHeader(t, r, "Location", "/api/segments/3")
				assertJSONLike(t, r.body, "part3/b-segment-again.json", segmentLike(3, capTag+"1"))
			})
			t.Run("find the segment with search=alias:", func(t *testing.T) {
				r := do("GET", "/api/segments?search=alias:"+capTag, "", http.StatusOK)
				assertSameJSON(t, r.body, "part3/b-segments-search-alias.json")
			})
			t.Run("find the segment with where alias eq", func(t *testing.T) {
				r := do("GET", "/api/segments?where%5B0%5D%5Bcol%5D=alias&where%5B0%5D%5Bexpr%5D=eq&where%5B0%5D%5Bval%5D="+capTag, "", http.StatusOK)
				wantJSON(t, r.body, "1", "total")
				wantKeys(t, r.body, []string{"2"}, "lists")
				assertJSONLike(t, []byte(fmt.Sprintf(`{"list":%s}`, mustMarshal(t, digBytes(t, r.body, "lists", "2")))), "part3/b-segment-new.json", segmentLike(2, capTag))
			})
			t.Run("plain search matches the suffixed copy too", func(t *testing.T) {
				r := do("GET", "/api/segments?search="+capTag, "", http.StatusOK)
				wantJSON(t, r.body, "2", "total")
				wantKeys(t, r.body, []string{"2", "3"}, "lists")
			})

			var ids [2]int
			for i, name := range []string{"Seg A", "Seg B"} {
				r := do("POST", "/api/contacts/new", `{"firstname":"`+name+`","tags":["`+capTag+`"]}`, http.StatusCreated)
				ids[i] = int(digBytes(t, r.body, "contact", "id").(float64))
			}
			t.Run("contacts in the segment before the segment job", func(t *testing.T) {
				r := do("GET", "/api/contacts?search=segment:"+capTag, "", http.StatusOK)
				assertSameJSON(t, r.body, "part3/b-contacts-segment-before.json")
			})
			t.Run("add contacts to the segment at once", func(t *testing.T) {
				r := do("POST", "/api/segments/2/contacts/add", fmt.Sprintf(`{"ids": [%d, %d]}`, ids[0], ids[1]), http.StatusOK)
				want := fmt.Sprintf(`{"success":1,"details":{"%d":{"success":true},"%d":{"success":true}}}`, ids[0], ids[1])
				if got := compact(t, r.body); got != want {
					t.Errorf("body: got %s, want %s (part3/b-segment-contacts-add.json with these ids)", got, want)
				}
			})
			t.Run("contacts in the segment after the add", func(t *testing.T) {
				r := do("GET", "/api/contacts?search=segment:"+capTag+"&minimal=1", "", http.StatusOK)
				wantString(t, r.body, "2", "total")
				wantKeys(t, r.body, []string{fmt.Sprint(ids[0]), fmt.Sprint(ids[1])}, "contacts")
				assertSameKeys(t, r.body, "part2/17.json", func(v any) any {
					for _, c := range dig(v, "contacts").(map[string]any) {
						return c
					}
					return nil
				})
				wantString(t, r.body, "Seg A", "contacts", fmt.Sprint(ids[0]), "fields", "all", "firstname")
			})
		})
	}
}

// What part 3 does not capture about tags and segments, as Mautic's
// source does it.
func TestTagsAndSegmentsMore(t *testing.T) {
	f := newFixture(t, Options{})
	access, _ := f.tokens()
	h := jsonHeader(access)
	do := func(method, path, body string, status int) *response {
		t.Helper()
		r := f.do(method, path, h, body)
		checkStatus(t, r, status)
		return r
	}
	tagID := func(name string) int {
		for _, tg := range f.Tags() {
			if tg.Name == name {
				return tg.ID
			}
		}
		t.Fatalf("no tag %q in %v", name, f.Tags())
		return 0
	}
	a := do("POST", "/api/contacts/new", `{"email":"a@example.org","tags":["ej-conversation-1"]}`, http.StatusCreated)
	b := do("POST", "/api/contacts/new", `{"email":"b@example.org","tags":["ej-conversation-1","other"]}`, http.StatusCreated)
	c := do("POST", "/api/contacts/new", `{"email":"c@example.org","tags":["ej-conversation-10"]}`, http.StatusCreated)
	idOf := func(r *response) int { return int(digBytes(t, r.body, "contact", "id").(float64)) }
	ca, cb, cc := idOf(a), idOf(b), idOf(c)

	t.Run("tags made by contacts have ids", func(t *testing.T) {
		r := do("POST", "/api/tags/new", `{"tag":"EJ-CONVERSATION-1"}`, http.StatusOK)
		wantJSON(t, r.body, fmt.Sprint(tagID("ej-conversation-1")), "tag", "id")
		wantString(t, r.body, "ej-conversation-1", "tag", "tag")
	})
	t.Run("a description, cleared by a later POST without one", func(t *testing.T) {
		r := do("POST", "/api/tags/new", `{"tag":"described","description":"d"}`, http.StatusCreated)
		wantString(t, r.body, "d", "tag", "description")
		r = do("GET", fmt.Sprintf("/api/tags/%d", tagID("described")), "", http.StatusOK)
		wantString(t, r.body, "d", "tag", "description")
		r = do("POST", "/api/tags/new", `{"tag":"described"}`, http.StatusOK)
		wantNil(t, r.body, "tag", "description")
	})
	t.Run("empty tag is the generic 500", func(t *testing.T) {
		r := do("POST", "/api/tags/new", `{"tag":""}`, http.StatusInternalServerError)
		assertSameJSON(t, r.body, "part3/a-e-approved-unregistered.json")
	})
	t.Run("missing tag id", func(t *testing.T) {
		r := do("GET", "/api/tags/999", "", http.StatusNotFound)
		assertSameJSON(t, r.body, "part2/07.json")
	})
	t.Run("tags: ids: and where filter, search words do not", func(t *testing.T) {
		r := do("GET", fmt.Sprintf("/api/tags?search=ids:%d", tagID("other")), "", http.StatusOK)
		wantJSON(t, r.body, "1", "total")
		r = do("GET", "/api/tags?where%5B0%5D%5Bcol%5D=tag&where%5B0%5D%5Bexpr%5D=eq&where%5B0%5D%5Bval%5D=other", "", http.StatusOK)
		wantKeys(t, r.body, []string{fmt.Sprint(tagID("other"))}, "tags")
		r = do("GET", "/api/tags?search=nothing-like-it&limit=2", "", http.StatusOK)
		wantJSON(t, r.body, fmt.Sprint(len(f.Tags())), "total")
		if got := len(digBytes(t, r.body, "tags").(map[string]any)); got != 2 {
			t.Errorf("tags on the page: got %d, want 2 (limit)", got)
		}
		r = do("GET", "/api/tags?where%5B0%5D%5Bcol%5D=nope&where%5B0%5D%5Bexpr%5D=eq&where%5B0%5D%5Bval%5D=x", "", http.StatusInternalServerError)
		checkHeader(t, r, "Mautic-Version", "")
	})

	filtered := fmt.Sprintf(`{"name":"Conversation 1","alias":"ej-conversation-1","isGlobal":false,"filters":[{"glue":"and","field":"tags","object":"lead","type":"tags","operator":"in","properties":{"filter":["%d"]}}]}`, tagID("ej-conversation-1"))
	seg := do("POST", "/api/segments/new", filtered, http.StatusCreated)
	segID := int(digBytes(t, seg.body, "list", "id").(float64))
	t.Run("user token: created by Admin User", func(t *testing.T) {
		wantJSON(t, seg.body, "1", "list", "createdBy")
		wantString(t, seg.body, "Admin User", "list", "createdByUser")
	})
	t.Run("an empty filter is refused", func(t *testing.T) {
		for _, body := range []string{
			`{"name":"x","filters":[{"glue":"and","field":"tags","object":"lead","type":"tags","operator":"in","properties":{"filter":[]}}]}`,
			`{"name":"x","filters":[{"glue":"and","field":"tags","object":"lead","type":"tags","operator":"in"}]}`,
		} {
			r := do("POST", "/api/segments/new", body, http.StatusBadRequest)
			checkHeader(t, r, "Mautic-Version", "5.1.0")
			want := `{"errors":[{"code":400,"message":"filter: A value is required.","details":{"filter":["A value is required."]}}]}`
			if got := compact(t, r.body); got != want {
				t.Errorf("body: got %s, want %s", got, want)
			}
		}
		do("POST", "/api/segments/new", `{"name":"nobody tagged","filters":[{"glue":"and","field":"tags","object":"lead","type":"tags","operator":"empty"}]}`, http.StatusCreated)
	})
	t.Run("the BC filter key moves into properties, values as strings", func(t *testing.T) {
		r := do("POST", "/api/segments/new", `{"name":"bc","filters":[{"glue":"and","field":"email","object":"lead","type":"email","operator":"=","filter":"a@example.org","display":null}]}`, http.StatusCreated)
		wantJSON(t, r.body, `{"filter":"a@example.org"}`, "list", "filters", "0", "properties")
	})
	t.Run("contacts/add: a missing contact fails alone", func(t *testing.T) {
		r := do("POST", fmt.Sprintf("/api/segments/%d/contacts/add", segID), fmt.Sprintf(`{"ids":[%d,999999,"%d"]}`, cc, ca), http.StatusOK)
		want := fmt.Sprintf(`{"success":1,"details":{"%d":{"success":true},"999999":{"success":false},"%d":{"success":true}}}`, cc, ca)
		if got := compact(t, r.body); got != want {
			t.Errorf("body: got %s, want %s", got, want)
		}
	})
	t.Run("contacts/add: errors", func(t *testing.T) {
		r := do("POST", "/api/segments/999/contacts/add", fmt.Sprintf(`{"ids":[%d]}`, ca), http.StatusNotFound)
		assertSameJSON(t, r.body, "part2/07.json")
		r = do("POST", fmt.Sprintf("/api/segments/%d/contacts/add", segID), `{"contacts":[1]}`, http.StatusBadRequest)
		if got, want := compact(t, r.body), `{"errors":[{"code":400,"message":"This is a bad request.","details":[]}]}`; got != want {
			t.Errorf("no ids: got %s, want %s", got, want)
		}
		off := do("POST", "/api/segments/new", `{"name":"off","isPublished":false}`, http.StatusCreated)
		offID := int(digBytes(t, off.body, "list", "id").(float64))
		want := `{"errors":[{"code":403,"message":"You do not have access to the requested area/action.","details":[]}]}`
		r = do("POST", fmt.Sprintf("/api/segments/%d/contacts/add", offID), fmt.Sprintf(`{"ids":[%d]}`, ca), http.StatusForbidden)
		if got := compact(t, r.body); got != want {
			t.Errorf("unpublished: got %s, want %s", got, want)
		}
		r = do("POST", fmt.Sprintf("/api/segments/%d/contact/%d/add", offID, ca), "", http.StatusForbidden)
		if got := compact(t, r.body); got != want {
			t.Errorf("unpublished, single add: got %s, want %s", got, want)
		}
		r = do("POST", fmt.Sprintf("/api/segments/%d/contacts/add", segID), `{"ids":[]}`, http.StatusOK)
		if got := compact(t, r.body); got != `{"success":1,"details":[]}` {
			t.Errorf("no ids at all: got %s", got)
		}
	})
	members := func() []int {
		for _, g := range f.Segments() {
			if g.ID == segID {
				return g.Members
			}
		}
		return nil
	}
	t.Run("the segment job fills the tag-filtered segment", func(t *testing.T) {
		// Before: ca and cc added by hand.
		if got, want := members(), []int{ca, cc}; !slices.Equal(got, want) {
			t.Fatalf("members before the job: got %v, want %v", got, want)
		}
		res := f.RebuildSegments()
		var mine *SegmentRebuild
		for i := range res {
			if res[i].ID == segID {
				mine = &res[i]
			}
		}
		if mine == nil || mine.Added != 1 || mine.Removed != 0 || mine.Members != 3 {
			t.Fatalf("RebuildSegments() = %+v, want 1 added (cb), none removed (manual members stay), 3 members", res)
		}
		r := do("GET", "/api/contacts?search=segment:ej-conversation-1", "", http.StatusOK)
		wantKeys(t, r.body, []string{fmt.Sprint(ca), fmt.Sprint(cb), fmt.Sprint(cc)}, "contacts")
		r = do("GET", fmt.Sprintf("/api/contacts/%d/segments", cb), "", http.StatusOK)
		wantJSON(t, r.body, "false", "lists", fmt.Sprint(segID), "manuallyAdded")
	})
	t.Run("the job takes out what it put in once it no longer matches", func(t *testing.T) {
		do("PATCH", fmt.Sprintf("/api/contacts/%d/edit", cb), `{"tags":["-ej-conversation-1"]}`, http.StatusOK)
		do("PATCH", fmt.Sprintf("/api/contacts/%d/edit", ca), `{"tags":["-ej-conversation-1"]}`, http.StatusOK)
		r := doReq(t, "POST", f.URL+"/_sim/segments/rebuild", nil, "")
		checkStatus(t, r, http.StatusOK)
		if !strings.Contains(string(r.body), fmt.Sprintf(`{"id":%d,"alias":"ej-conversation-1","added":0,"removed":1,"members":2}`, segID)) {
			t.Errorf("/_sim/segments/rebuild: got %s, want cb removed, ca (manual) kept", r.body)
		}
		if got, want := members(), []int{ca, cc}; !slices.Equal(got, want) {
			t.Errorf("members: got %v, want %v", got, want)
		}
	})
	t.Run("a contact removed by hand is not put back by the job", func(t *testing.T) {
		do("POST", fmt.Sprintf("/api/segments/%d/contact/%d/remove", segID, cc), "", http.StatusOK)
		do("PATCH", fmt.Sprintf("/api/contacts/%d/edit", cc), `{"tags":["ej-conversation-1"]}`, http.StatusOK)
		f.RebuildSegments()
		if got, want := members(), []int{ca}; !slices.Equal(got, want) {
			t.Errorf("members: got %v, want %v", got, want)
		}
		r := do("GET", "/api/contacts?search=!segment:ej-conversation-1", "", http.StatusOK)
		wantKeys(t, r.body, []string{fmt.Sprint(cb), fmt.Sprint(cc)}, "contacts")
	})
	t.Run("segments list: where, name:, is:, order by name", func(t *testing.T) {
		r := do("GET", "/api/segments?search=name:conversation", "", http.StatusOK)
		wantKeys(t, r.body, []string{fmt.Sprint(segID)}, "lists")
		r = do("GET", "/api/segments?search=is:unpublished", "", http.StatusOK)
		wantJSON(t, r.body, "1", "total")
		r = do("GET", "/api/segments?where%5B0%5D%5Bcol%5D=isGlobal&where%5B0%5D%5Bexpr%5D=eq&where%5B0%5D%5Bval%5D=0", "", http.StatusOK)
		wantKeys(t, r.body, []string{fmt.Sprint(segID)}, "lists")
		r = do("GET", "/api/segments", "", http.StatusOK)
		var names []string
		for _, m := range regexp.MustCompile(`,"name":"([^"]*)"`).FindAllStringSubmatch(string(r.body), -1) {
			names = append(names, m[1])
		}
		// MySQL's collation ignores case.
		if want := []string{"bc", "Conversation 1", "nobody tagged", "off"}; !slices.Equal(names, want) {
			t.Errorf("segment names in answer order: got %v, want %v", names, want)
		}
	})
	t.Run("stats count the routes", func(t *testing.T) {
		st := f.Stats().Requests
		for _, k := range []string{"POST /api/tags/new", "GET /api/tags", "GET /api/tags/{id}", "POST /api/segments/new", "GET /api/segments", "POST /api/segments/{id}/contacts/add", "POST /api/segments/{id}/contact/{contactId}/add"} {
			if st[k] == 0 {
				t.Errorf("Stats().Requests[%q] = 0", k)
			}
		}
	})
	t.Run("controls list tags and segments", func(t *testing.T) {
		r := doReq(t, "GET", f.URL+"/_sim/tags", nil, "")
		if !strings.Contains(string(r.body), `{"id":1,"tag":"ej-conversation-1"}`) {
			t.Errorf("/_sim/tags: got %s", r.body)
		}
		r = doReq(t, "GET", f.URL+"/_sim/segments", nil, "")
		if !strings.Contains(string(r.body), fmt.Sprintf(`"alias":"ej-conversation-1","is_published":true,"is_global":false,"members":[%d]`, ca)) {
			t.Errorf("/_sim/segments: got %s", r.body)
		}
	})
}
