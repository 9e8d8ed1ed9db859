package mautictest

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// segment is a contact list ("segment" in Mautic's UI, "list" in its API).
type segment struct {
	id          int
	name        string
	alias       string
	description string
	published   bool
	isGlobal    bool
	dateAdded   time.Time
	members     map[int]time.Time // contact id → date added
}

var nonAlias = regexp.MustCompile(`[^a-z0-9]+`)

func (s *Sim) appendSegment(b []byte, g *segment) []byte {
	b = append(b, `{"isPublished":`...)
	b = strconv.AppendBool(b, g.published)
	b = append(b, `,"dateAdded":`...)
	b = appendTime(b, g.dateAdded)
	b = append(b, `,"dateModified":null,"createdBy":1,"createdByUser":"Admin User","modifiedBy":null,"modifiedByUser":null,"id":`...)
	b = strconv.AppendInt(b, int64(g.id), 10)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, g.name)
	b = append(b, `,"publicName":`...)
	b = appendJSONString(b, g.name)
	b = append(b, `,"alias":`...)
	b = appendJSONString(b, g.alias)
	b = append(b, `,"description":`...)
	if g.description == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, g.description)
	}
	b = append(b, `,"category":null,"filters":[],"isGlobal":`...)
	b = strconv.AppendBool(b, g.isGlobal)
	return append(b, `,"isPreferenceCenter":false}`...)
}

// newSegment is POST /api/segments/new (transcript part 2, exchange 43).
func (s *Sim) newSegment(w http.ResponseWriter, r *http.Request, call *apiCall) {
	m, ok := s.bodyObject(w, r, call.body)
	if !ok {
		return
	}
	str := func(k string) string { v, _ := scalarString(m[k]); return strings.TrimSpace(v) }
	name := str("name")
	if name == "" {
		s.writeAPI(w, http.StatusBadRequest, controllerError(http.StatusBadRequest, "name: A name is required.", []byte(`{"name":["A name is required."]}`)))
		return
	}
	g := &segment{name: name, description: str("description"), published: true, isGlobal: true, members: map[int]time.Time{}}
	if v, ok := m["isPublished"]; ok {
		g.published = !phpEmpty(v)
	}
	if v, ok := m["isGlobal"]; ok {
		g.isGlobal = !phpEmpty(v)
	}
	g.alias = strings.Trim(nonAlias.ReplaceAllString(strings.ToLower(str("alias")), "-"), "-")
	if g.alias == "" {
		g.alias = strings.Trim(nonAlias.ReplaceAllString(strings.ToLower(name), "-"), "-")
	}
	s.mu.Lock()
	g.id = s.nextSegmentID
	s.nextSegmentID++
	g.dateAdded = s.nowSec()
	s.segments[g.id] = g
	b := append([]byte(`{"list":`), s.appendSegment(nil, g)...)
	s.mu.Unlock()
	w.Header().Set("Location", "/api/segments/"+strconv.Itoa(g.id))
	s.writeAPI(w, http.StatusCreated, append(b, '}'))
}

func (s *Sim) getSegment(w http.ResponseWriter, r *http.Request, call *apiCall) {
	s.mu.Lock()
	g := s.segments[call.args[0]]
	if g == nil {
		s.mu.Unlock()
		s.notFound(w)
		return
	}
	b := append([]byte(`{"list":`), s.appendSegment(nil, g)...)
	s.mu.Unlock()
	s.writeAPI(w, http.StatusOK, append(b, '}'))
}

func (s *Sim) segmentMembership(w http.ResponseWriter, call *apiCall, add bool) {
	s.mu.Lock()
	g := s.segments[call.args[0]]
	c := s.contacts[call.args[1]]
	switch {
	case g == nil:
		s.mu.Unlock()
		s.notFound(w)
		return
	case c == nil:
		s.mu.Unlock()
		// LeadAccessTrait answers this one with the session cache headers.
		w.Header().Set("Mautic-Version", s.opts.Version)
		writeJSON(w, http.StatusNotFound, "max-age=0, must-revalidate, private", controllerError(http.StatusNotFound, "Contact not found.", nil))
		return
	}
	if add {
		if _, ok := g.members[c.id]; !ok {
			g.members[c.id] = s.nowSec()
		}
	} else {
		delete(g.members, c.id)
	}
	s.mu.Unlock()
	s.writeAPI(w, http.StatusOK, []byte(`{"success":1}`))
}

// segmentAdd is POST /api/segments/{id}/contact/{contactId}/add (part 2,
// exchanges 44–46).
func (s *Sim) segmentAdd(w http.ResponseWriter, r *http.Request, call *apiCall) {
	s.segmentMembership(w, call, true)
}

func (s *Sim) segmentRemove(w http.ResponseWriter, r *http.Request, call *apiCall) {
	s.segmentMembership(w, call, false)
}

// contactSegments is GET /api/contacts/{id}/segments (part 2, exchange 47).
func (s *Sim) contactSegments(w http.ResponseWriter, r *http.Request, call *apiCall) {
	s.mu.Lock()
	c := s.contacts[call.args[0]]
	if c == nil {
		s.mu.Unlock()
		s.notFound(w)
		return
	}
	var ids []int
	for id, g := range s.segments {
		if _, ok := g.members[c.id]; ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	b := []byte(`{"total":`)
	b = strconv.AppendInt(b, int64(len(ids)), 10)
	b = append(b, `,"lists":`...)
	if len(ids) == 0 {
		b = append(b, "[]"...)
	} else {
		b = append(b, '{')
		for i, id := range ids {
			g := s.segments[id]
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, strconv.Itoa(id))
			b = append(b, `:{"id":`...)
			b = strconv.AppendInt(b, int64(id), 10)
			b = append(b, `,"name":`...)
			b = appendJSONString(b, g.name)
			b = append(b, `,"alias":`...)
			b = appendJSONString(b, g.alias)
			b = append(b, `,"dateAdded":`...)
			b = appendTime(b, g.members[c.id])
			b = append(b, `,"manuallyRemoved":false,"manuallyAdded":true}`...)
		}
		b = append(b, '}')
	}
	s.mu.Unlock()
	s.writeAPI(w, http.StatusOK, append(b, '}'))
}

func (s *Sim) points(w http.ResponseWriter, call *apiCall, sign int) {
	s.mu.Lock()
	c := s.contacts[call.args[0]]
	if c == nil {
		s.mu.Unlock()
		s.notFound(w)
		return
	}
	c.points += sign * call.args[1]
	c.dateModified = s.nowSec()
	s.mu.Unlock()
	s.writeAPI(w, http.StatusOK, []byte(`{"success":1}`))
}

// pointsPlus is POST /api/contacts/{id}/points/plus/{points} (part 2,
// exchanges 48–49).
func (s *Sim) pointsPlus(w http.ResponseWriter, r *http.Request, call *apiCall) {
	s.points(w, call, 1)
}

func (s *Sim) pointsMinus(w http.ResponseWriter, r *http.Request, call *apiCall) {
	s.points(w, call, -1)
}
