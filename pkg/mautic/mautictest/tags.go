package mautictest

import (
	"net/http"
	"strconv"
	"strings"
)

// Tag is a tag as the simulator stores it: created by POST /api/tags/new or
// implicitly by a contact's tags.
type Tag struct {
	ID   int    `json:"id"`
	Name string `json:"tag"`
}

// Tags returns every tag, by id.
func (s *Sim) Tags() []Tag {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Tag, len(s.tags))
	for i, t := range s.tags {
		out[i] = Tag{ID: t.id, Name: t.name}
	}
	return out
}

// appendTag renders a tag as the API does. Call with s.mu held.
func (s *Sim) appendTag(b []byte, t *tag) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, int64(t.id), 10)
	b = append(b, `,"tag":`...)
	b = appendJSONString(b, t.name)
	b = append(b, `,"description":`...)
	if d, ok := s.tagDescriptions[t.id]; ok {
		b = appendJSONString(b, d)
	} else {
		b = append(b, "null"...)
	}
	return append(b, '}')
}

// newTag is POST /api/tags/new (part 3 B): TagApiController::getNewEntity
// finds the tag by name (the collation ignores case) or makes a new one,
// then the form is submitted as a POST, which clears what is not sent
// (description). 201 with Location for a new tag, 200 with the existing one.
// An empty "tag" throws before the form: the generic 500.
func (s *Sim) newTag(w http.ResponseWriter, r *http.Request, call *apiCall) {
	m, ok := s.bodyObject(w, r, call.body)
	if !ok {
		return
	}
	name, scalar := scalarString(m["tag"])
	if phpEmpty(m["tag"]) || !scalar {
		writeGenericError(w, http.StatusInternalServerError)
		return
	}
	name = strings.TrimSpace(name)
	desc, hasDesc := "", false
	if v, ok := m["description"]; ok && v != nil {
		desc, hasDesc = scalarString(v)
	}

	s.mu.Lock()
	status := http.StatusOK
	t := s.tagByName[strings.ToLower(name)]
	if t == nil {
		status = http.StatusCreated
		t = s.tagNamed(name)
	}
	if hasDesc {
		s.tagDescriptions[t.id] = desc
	} else {
		delete(s.tagDescriptions, t.id)
	}
	b := append([]byte(`{"tag":`), s.appendTag(nil, t)...)
	id := t.id
	s.mu.Unlock()
	if status == http.StatusCreated {
		w.Header().Set("Location", "/api/tags/"+strconv.Itoa(id))
	}
	s.writeAPI(w, status, append(b, '}'))
}

// getTag is GET /api/tags/{id}.
func (s *Sim) getTag(w http.ResponseWriter, r *http.Request, call *apiCall) {
	s.mu.Lock()
	id := call.args[0]
	if id < 1 || id > len(s.tags) {
		s.mu.Unlock()
		s.notFound(w)
		return
	}
	b := append([]byte(`{"tag":`), s.appendTag(nil, s.tags[id-1])...)
	s.mu.Unlock()
	s.writeAPI(w, http.StatusOK, append(b, '}'))
}

// tagList is GET /api/tags. The Tag entity has no name or title property,
// so a plain search word filters nothing (CommonRepository's catch-all): a
// search for one tag answers every tag (part 3 B). Only ids: filters.
var tagList = entityList{
	multi: "tags",
	props: []string{"id", "tag", "description"},
	search: func(q string) []rowCond {
		var conds []rowCond
		for _, t := range parseSearch(q) {
			if t.hasCommand && t.command == "ids" {
				c := idsCond(t.arg)
				if t.not {
					c = notCond(c)
				}
				conds = append(conds, c)
			}
		}
		return conds
	},
}

func (s *Sim) listTags(w http.ResponseWriter, r *http.Request, call *apiCall) {
	s.listEntities(w, r, tagList, func() ([]int, []row) {
		ids := make([]int, len(s.tags))
		rows := make([]row, len(s.tags))
		for i, t := range s.tags {
			ids[i] = t.id
			d, ok := s.tagDescriptions[t.id]
			rows[i] = row{"id": intCell(t.id), "tag": textCell(t.name), "description": cell{val: d, null: !ok}}
		}
		return ids, rows
	}, func(b []byte, id int) []byte { return s.appendTag(b, s.tags[id-1]) })
}
