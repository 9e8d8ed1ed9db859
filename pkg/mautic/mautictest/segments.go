package mautictest

import (
	"encoding/json"
	"fmt"
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
	publicName  string
	alias       string
	description string
	published   bool
	isGlobal    bool
	dateAdded   time.Time
	// createdBy is the creating user's id, 0 (null) for a client_credentials
	// token; createdByUser is the name shown for the creator.
	createdBy     int
	createdByUser string
	filters       []segFilter
	members       map[int]*member // contact id → membership
	removed       map[int]bool    // contacts removed by hand (manually_removed)
}

// member is one row of lead_lists_leads.
type member struct {
	added  time.Time
	manual bool // manually_added: added by the API, kept by the segment job
}

// segFilter is one segment filter as stored: the form's glue, field,
// object, type and operator (nil when not sent) and properties.filter,
// whose values the form turns into strings (part 3 B: [10] → ["10"]).
type segFilter struct {
	glue, field, object, typ, operator *string
	value                              filterValue
	display                            *string
}

// filterValue is properties.filter: null, a string, or a list of strings.
type filterValue struct {
	null bool
	list bool
	vals []string
}

// blank is Symfony's NotBlank: null, "", false, an empty list.
func (v filterValue) blank() bool {
	return v.null || (v.list && len(v.vals) == 0) || (!v.list && v.vals[0] == "")
}

var nonAlias = regexp.MustCompile(`[^a-z0-9]+`)

const accessDeniedMessage = "You do not have access to the requested area/action."

func appendNullable(b []byte, p *string) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return appendJSONString(b, *p)
}

func (s *Sim) appendSegment(b []byte, g *segment) []byte {
	b = append(b, `{"isPublished":`...)
	b = strconv.AppendBool(b, g.published)
	b = append(b, `,"dateAdded":`...)
	b = appendTime(b, g.dateAdded)
	b = append(b, `,"dateModified":null,"createdBy":`...)
	if g.createdBy == 0 {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(g.createdBy), 10)
	}
	b = append(b, `,"createdByUser":`...)
	b = appendJSONString(b, g.createdByUser)
	b = append(b, `,"modifiedBy":null,"modifiedByUser":null,"id":`...)
	b = strconv.AppendInt(b, int64(g.id), 10)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, g.name)
	b = append(b, `,"publicName":`...)
	b = appendJSONString(b, g.publicName)
	b = append(b, `,"alias":`...)
	b = appendJSONString(b, g.alias)
	b = append(b, `,"description":`...)
	if g.description == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, g.description)
	}
	b = append(b, `,"category":null,"filters":[`...)
	for i, f := range g.filters {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"glue":`...)
		b = appendNullable(b, f.glue)
		b = append(b, `,"field":`...)
		b = appendNullable(b, f.field)
		b = append(b, `,"object":`...)
		b = appendNullable(b, f.object)
		b = append(b, `,"type":`...)
		b = appendNullable(b, f.typ)
		b = append(b, `,"operator":`...)
		b = appendNullable(b, f.operator)
		b = append(b, `,"properties":{"filter":`...)
		switch {
		case f.value.null:
			b = append(b, "null"...)
		case f.value.list:
			b = append(b, '[')
			for j, v := range f.value.vals {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, v)
			}
			b = append(b, ']')
		default:
			b = appendJSONString(b, f.value.vals[0])
		}
		if f.display != nil {
			b = append(b, `,"display":`...)
			b = appendJSONString(b, *f.display)
		}
		b = append(b, "}}"...)
	}
	b = append(b, `],"isGlobal":`...)
	b = strconv.AppendBool(b, g.isGlobal)
	return append(b, `,"isPreferenceCenter":false}`...)
}

// creator is who an API write is recorded as: the user of a user token
// ("Admin User", id 1, as captured in part 2), or, for a client_credentials
// token, no user id and the credential's name followed by its id in
// brackets (part 3 B: "seg-capture 1796530747 [11]"). Call with s.mu held.
func (s *Sim) creator(tok *accessToken) (int, string) {
	if tok.user != "" {
		return 1, "Admin User"
	}
	if c := s.clients[tok.clientID]; c != nil {
		return 0, fmt.Sprintf("%s [%d]", c.name, c.id)
	}
	return 0, ""
}

// formErrors collects form errors the way FormErrorMessagesTrait does: by
// field name, a later error on the same name replacing the earlier one.
type formErrors struct {
	keys []string
	msgs map[string]string
}

func (e *formErrors) add(field, msg string) {
	if e.msgs == nil {
		e.msgs = map[string]string{}
	}
	if _, ok := e.msgs[field]; !ok {
		e.keys = append(e.keys, field)
	}
	e.msgs[field] = msg
}

// body is the controller's 400: "field: message, …" and details
// {"field":["message"]}.
func (e *formErrors) body() []byte {
	var msg strings.Builder
	details := []byte{'{'}
	for i, k := range e.keys {
		if i > 0 {
			msg.WriteString(", ")
			details = append(details, ',')
		}
		msg.WriteString(k + ": " + e.msgs[k])
		details = appendJSONString(details, k)
		details = append(details, ":["...)
		details = appendJSONString(details, e.msgs[k])
		details = append(details, ']')
	}
	return controllerError(http.StatusBadRequest, msg.String(), append(details, '}'))
}

// parseFilterValue reads properties.filter as the form binds it: scalars
// become strings, a list (or an object, a PHP array) a list of strings.
func parseFilterValue(v any) filterValue {
	switch x := v.(type) {
	case nil:
		return filterValue{null: true}
	case []any:
		fv := filterValue{list: true, vals: []string{}}
		for _, it := range x {
			if s, ok := scalarString(it); ok {
				fv.vals = append(fv.vals, s)
			}
		}
		return fv
	case map[string]any:
		fv := filterValue{list: true, vals: []string{}}
		for _, k := range sortedKeys(x) {
			if s, ok := scalarString(x[k]); ok {
				fv.vals = append(fv.vals, s)
			}
		}
		return fv
	}
	s, _ := scalarString(v)
	return filterValue{vals: []string{s}}
}

// parseFilters reads the filters of a segment body (ListApiController's
// prepareParametersForBinding moves a filter's own "filter" and "display"
// into its properties) and validates them: every operator but empty and
// !empty needs a value ("filter: A value is required.", part 3 B).
func parseFilters(v any, errs *formErrors) []segFilter {
	if v == nil {
		return nil
	}
	var items []any
	switch x := v.(type) {
	case []any:
		items = x
	case map[string]any:
		for _, k := range sortedKeys(x) {
			items = append(items, x[k])
		}
	case string:
		if x == "" {
			return nil
		}
		errs.add("filters", "This value is not valid.")
		return nil
	default:
		errs.add("filters", "This value is not valid.")
		return nil
	}
	out := make([]segFilter, 0, len(items))
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			errs.add("filters", "This value is not valid.")
			continue
		}
		str := func(k string) *string {
			if v, ok := m[k]; ok && v != nil {
				if s, ok := scalarString(v); ok {
					return &s
				}
			}
			return nil
		}
		f := segFilter{glue: str("glue"), field: str("field"), object: str("object"), typ: str("type"), operator: str("operator")}
		props, _ := m["properties"].(map[string]any)
		fv, hasFilter := props["filter"]
		if !hasFilter {
			fv = m["filter"]
		}
		f.value = parseFilterValue(fv)
		if d, ok := props["display"]; ok && d != nil {
			if s, ok := scalarString(d); ok {
				f.display = &s
			}
		} else if d, ok := m["display"]; ok && !phpEmpty(d) {
			if s, ok := scalarString(d); ok {
				f.display = &s
			}
		}
		op := ""
		if f.operator != nil {
			op = *f.operator
		}
		if op != "empty" && op != "!empty" && f.value.blank() {
			errs.add("filter", "A value is required.")
		}
		out = append(out, f)
	}
	return out
}

// cleanAlias is FormModel::cleanAlias with "-" for spaces: lower case,
// letters and digits, runs of anything else one "-".
func cleanAlias(s string) string {
	return strings.Trim(nonAlias.ReplaceAllString(strings.ToLower(strings.TrimSpace(s)), "-"), "-")
}

// uniqueAlias is ListModel::saveEntity's loop: an alias taken by another
// segment gets the count of holders appended, then counts up (part 3 B:
// the same alias again became alias + "1"). Call with s.mu held.
func (s *Sim) uniqueAlias(alias string) string {
	holders := func(a string) int {
		n := 0
		for _, g := range s.segments {
			if g.alias == a {
				n++
			}
		}
		return n
	}
	test := alias
	count := holders(test)
	for tag := count; count > 0; tag++ {
		test = alias + strconv.Itoa(tag)
		count = holders(test)
	}
	return test
}

// newSegment is POST /api/segments/new (part 2, exchange 43; part 3 B). It
// is not idempotent: an alias that exists gets a suffix.
func (s *Sim) newSegment(w http.ResponseWriter, r *http.Request, call *apiCall) {
	m, ok := s.bodyObject(w, r, call.body)
	if !ok {
		return
	}
	str := func(k string) string { v, _ := scalarString(m[k]); return strings.TrimSpace(v) }
	var errs formErrors
	name := str("name")
	if name == "" {
		errs.add("name", "A name is required.")
	}
	filters := parseFilters(m["filters"], &errs)
	if len(errs.keys) > 0 {
		s.writeAPI(w, http.StatusBadRequest, errs.body())
		return
	}
	g := &segment{name: name, publicName: str("publicName"), description: str("description"), published: true, isGlobal: true,
		filters: filters, members: map[int]*member{}, removed: map[int]bool{}}
	if g.publicName == "" {
		g.publicName = name
	}
	if v, ok := m["isPublished"]; ok {
		g.published = !phpEmpty(v)
	}
	if v, ok := m["isGlobal"]; ok {
		g.isGlobal = !phpEmpty(v)
	}
	alias := cleanAlias(str("alias"))
	if alias == "" {
		alias = cleanAlias(name)
	}
	s.mu.Lock()
	g.alias = s.uniqueAlias(alias)
	g.createdBy, g.createdByUser = s.creator(call.token)
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

// segmentList is GET /api/segments (LeadListRepository): default order by
// name; search= knows ids:, name: and is:published|unpublished|global|
// uncategorized, and otherwise matches words anywhere in the name or alias
// (so a full alias also finds its suffixed copies); an unknown command
// such as alias: is matched as the literal word "alias:x", which finds
// nothing (part 3 B). Find a segment exactly with
// where[0][col]=alias&where[0][expr]=eq&where[0][val]=x.
var segmentList = entityList{
	multi:        "lists",
	props:        []string{"id", "name", "publicName", "alias", "description", "isPublished", "isGlobal", "isPreferenceCenter", "dateAdded", "createdBy"},
	defaultOrder: "name",
	search:       segmentSearch,
}

func segmentSearch(q string) []rowCond {
	var conds []rowCond
	catchAll := func(pattern string) rowCond {
		return func(r row) bool {
			return likeMatch(r.get("name").val, pattern) || likeMatch(r.get("alias").val, pattern)
		}
	}
	for _, t := range parseSearch(q) {
		var c rowCond
		switch {
		case t.hasCommand && t.command == "ids":
			c = idsCond(t.arg)
		case t.hasCommand && t.command == "name":
			pattern := t.arg
			if !t.strict {
				pattern = "%" + t.arg + "%"
			}
			c = func(r row) bool { return likeMatch(r.get("name").val, pattern) }
		case t.hasCommand && t.command == "is" && t.arg == "published":
			c = func(r row) bool { return r.get("isPublished").val == "1" }
		case t.hasCommand && t.command == "is" && t.arg == "unpublished":
			c = func(r row) bool { return r.get("isPublished").val == "0" }
		case t.hasCommand && t.command == "is" && t.arg == "global":
			c = func(r row) bool { return r.get("isGlobal").val == "1" }
		case t.hasCommand && t.command == "is" && t.arg == "uncategorized":
			c = func(row) bool { return true }
		case t.hasCommand:
			// Not a command of this repository: the whole token as one
			// strict word, its "!" dropped.
			conds = append(conds, catchAll(t.command+":"+t.arg))
			continue
		default:
			pattern := t.word
			if !t.strict && !strings.Contains(pattern, "%") {
				pattern = "%" + pattern + "%"
			}
			c = catchAll(pattern)
		}
		if t.not {
			c = notCond(c)
		}
		conds = append(conds, c)
	}
	return conds
}

func (s *Sim) listSegments(w http.ResponseWriter, r *http.Request, call *apiCall) {
	s.listEntities(w, r, segmentList, func() ([]int, []row) {
		ids := make([]int, 0, len(s.segments))
		for id := range s.segments {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		rows := make([]row, len(ids))
		for i, id := range ids {
			g := s.segments[id]
			createdBy := cell{null: true, numeric: true}
			if g.createdBy != 0 {
				createdBy = intCell(g.createdBy)
			}
			rows[i] = row{"id": intCell(id), "name": textCell(g.name), "publicName": textCell(g.publicName), "alias": textCell(g.alias),
				"description": nullableCell(g.description), "isPublished": boolCell(g.published), "isGlobal": boolCell(g.isGlobal),
				"isPreferenceCenter": boolCell(false), "dateAdded": textCell(g.dateAdded.Format(dbTime)), "createdBy": createdBy}
		}
		return ids, rows
	}, func(b []byte, id int) []byte { return s.appendSegment(b, s.segments[id]) })
}

// addMember puts contact id in g by hand (manually_added), clearing a
// manual removal. Call with s.mu held.
func (s *Sim) addMember(g *segment, id int) {
	delete(g.removed, id)
	if m := g.members[id]; m != nil {
		m.manual = true
		return
	}
	g.members[id] = &member{added: s.nowSec(), manual: true}
}

// accessDenied answers the controllers' 403.
func (s *Sim) accessDenied(w http.ResponseWriter) {
	s.writeAPI(w, http.StatusForbidden, controllerError(http.StatusForbidden, accessDeniedMessage, nil))
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
	case !g.published:
		// getUserLists lists published segments only.
		s.mu.Unlock()
		s.accessDenied(w)
		return
	}
	if add {
		s.addMember(g, c.id)
	} else {
		delete(g.members, c.id)
		g.removed[c.id] = true
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

// contactIDKey reads one item of "ids" as ListApiController::addLeadsAction
// uses it: the key it is reported under when it fails (PHP's array key for
// the value) and the contact id it looks up ((int) cast).
func contactIDKey(v any) (key string, id int) {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return strconv.FormatInt(n, 10), int(n)
		}
		f, _ := x.Float64()
		return strconv.Itoa(int(f)), int(f)
	case string:
		return x, phpInt(x)
	case bool:
		if x {
			return "1", 1
		}
		return "0", 0
	}
	return "", 0
}

// segmentAddContacts is POST /api/segments/{id}/contacts/add {"ids":[…]}
// (part 3 B): 200 {"success":1,"details":{"<id>":{"success":true|false}}},
// a contact that does not exist (or may not be edited) reported with
// success false, the others added by hand at once. No "ids" → 400; a
// missing segment → 404; an unpublished one → 403. There is no batch
// limit (the controller loops over the ids).
func (s *Sim) segmentAddContacts(w http.ResponseWriter, r *http.Request, call *apiCall) {
	m, ok := s.bodyObject(w, r, call.body)
	if !ok {
		return
	}
	ids, has := m["ids"]
	if !has || ids == nil {
		s.writeAPI(w, http.StatusBadRequest, controllerError(http.StatusBadRequest, "This is a bad request.", nil))
		return
	}
	var items []any
	switch x := ids.(type) {
	case []any:
		items = x
	case map[string]any:
		for _, k := range sortedKeys(x) {
			items = append(items, x[k])
		}
	}
	s.mu.Lock()
	g := s.segments[call.args[0]]
	switch {
	case g == nil:
		s.mu.Unlock()
		s.notFound(w)
		return
	case !g.published:
		s.mu.Unlock()
		s.accessDenied(w)
		return
	}
	var keys []string
	result := map[string]bool{}
	for _, it := range items {
		key, id := contactIDKey(it)
		var c *contact
		if id > 0 {
			c = s.contacts[id]
		}
		if c != nil {
			s.addMember(g, c.id)
			key = strconv.Itoa(c.id)
		}
		if _, seen := result[key]; !seen {
			keys = append(keys, key)
		}
		result[key] = c != nil
	}
	s.mu.Unlock()

	b := []byte(`{"success":1,"details":`)
	list := true // PHP arrays keyed 0…n-1 in order are JSON lists
	for i, k := range keys {
		list = list && k == strconv.Itoa(i)
	}
	if list {
		b = append(b, '[')
	} else {
		b = append(b, '{')
	}
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		if !list {
			b = appendJSONString(b, k)
			b = append(b, ':')
		}
		b = append(b, `{"success":`...)
		b = strconv.AppendBool(b, result[k])
		b = append(b, '}')
	}
	if list {
		b = append(b, ']')
	} else {
		b = append(b, '}')
	}
	s.writeAPI(w, http.StatusOK, append(b, '}'))
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
			b = appendTime(b, g.members[c.id].added)
			b = append(b, `,"manuallyRemoved":false,"manuallyAdded":`...)
			b = strconv.AppendBool(b, g.members[c.id].manual)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	s.mu.Unlock()
	s.writeAPI(w, http.StatusOK, append(b, '}'))
}

// inSegment reports whether contact id is in a segment with this alias
// (the contacts search command segment:, an exact alias match that skips
// manual removals). Call with s.mu held.
func (s *Sim) inSegment(id int, alias string) bool {
	key := normKey(alias)
	for _, g := range s.segments {
		if normKey(g.alias) == key {
			if _, ok := g.members[id]; ok {
				return true
			}
		}
	}
	return false
}

// Segment is a segment as the simulator stores it.
type Segment struct {
	ID        int    `json:"id"`
	Name      string `json:"name"`
	Alias     string `json:"alias"`
	Published bool   `json:"is_published"`
	Global    bool   `json:"is_global"`
	// Members are the contact ids in the segment, ascending.
	Members []int `json:"members"`
}

// Segments returns every segment, by id.
func (s *Sim) Segments() []Segment {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int, 0, len(s.segments))
	for id := range s.segments {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]Segment, 0, len(ids))
	for _, id := range ids {
		g := s.segments[id]
		members := make([]int, 0, len(g.members))
		for cid := range g.members {
			members = append(members, cid)
		}
		slices.Sort(members)
		out = append(out, Segment{ID: id, Name: g.name, Alias: g.alias, Published: g.published, Global: g.isGlobal, Members: members})
	}
	return out
}

// SegmentRebuild is what one segment job run did to one segment.
type SegmentRebuild struct {
	ID    int    `json:"id"`
	Alias string `json:"alias"`
	// Added and Removed count the contacts the job put in and took out;
	// Members is the count after the run.
	Added   int `json:"added"`
	Removed int `json:"removed"`
	Members int `json:"members"`
}

// RebuildSegments runs Mautic's segment job (mautic:segments:update, a
// cron job on a real Mautic) over every published segment with filters:
// contacts matching the filters join (unless removed by hand), members the
// job added that no longer match leave, members added by hand stay. Until
// it runs, a filtered segment stays as it was (part 3 B: empty right after
// creation). Filters understood: tags (in, !in, empty, !empty, values are
// tag ids) and contact fields (=, !=, empty, !empty, like, !like,
// startsWith, endsWith, contains, in, !in, gt, gte, lt, lte); any other
// filter matches no contact. Glue "or" starts a new group of "and"ed
// filters.
func (s *Sim) RebuildSegments() []SegmentRebuild {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int, 0, len(s.segments))
	for id := range s.segments {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []SegmentRebuild
	now := s.nowSec()
	for _, id := range ids {
		g := s.segments[id]
		if !g.published || len(g.filters) == 0 {
			continue
		}
		res := SegmentRebuild{ID: id, Alias: g.alias}
		match := map[int]bool{}
		for _, cid := range s.order {
			if s.segmentMatches(g, s.contacts[cid]) {
				match[cid] = true
				if g.members[cid] == nil && !g.removed[cid] {
					g.members[cid] = &member{added: now}
					res.Added++
				}
			}
		}
		for cid, m := range g.members {
			if !m.manual && !match[cid] {
				delete(g.members, cid)
				res.Removed++
			}
		}
		res.Members = len(g.members)
		out = append(out, res)
	}
	return out
}

// segmentMatches evaluates g's filters on c. Call with s.mu held.
func (s *Sim) segmentMatches(g *segment, c *contact) bool {
	group := true
	for i, f := range g.filters {
		if i > 0 && f.glue != nil && strings.EqualFold(*f.glue, "or") {
			if group {
				return true
			}
			group = true
		}
		group = group && s.filterMatches(f, c)
	}
	return group
}

func (s *Sim) filterMatches(f segFilter, c *contact) bool {
	op := ""
	if f.operator != nil {
		op = *f.operator
	}
	field := ""
	if f.field != nil {
		field = *f.field
	}
	vals := f.value.vals
	if field == "tags" {
		has := func() bool {
			for _, v := range vals {
				if slices.Contains(c.tags, phpInt(v)) {
					return true
				}
			}
			return false
		}
		switch op {
		case "in":
			return has()
		case "!in":
			return !has()
		case "empty":
			return len(c.tags) == 0
		case "!empty":
			return len(c.tags) > 0
		}
		return false
	}
	if f.object != nil && *f.object != "lead" {
		return false
	}
	fi, ok := fieldByAlias[field]
	if !ok || !writable[fi] {
		return false
	}
	v := c.vals[fi]
	first := ""
	if len(vals) > 0 {
		first = vals[0]
	}
	switch op {
	case "empty":
		return v == ""
	case "!empty":
		return v != ""
	case "=":
		return v != "" && normKey(v) == normKey(first)
	case "!=":
		return v == "" || normKey(v) != normKey(first)
	case "like", "!like":
		pattern := first
		if !strings.Contains(pattern, "%") {
			pattern = "%" + pattern + "%"
		}
		return (v != "" && likeMatch(v, pattern)) == (op == "like")
	case "startsWith":
		return v != "" && strings.HasPrefix(strings.ToLower(v), strings.ToLower(first))
	case "endsWith":
		return v != "" && strings.HasSuffix(strings.ToLower(v), strings.ToLower(first))
	case "contains":
		return v != "" && strings.Contains(strings.ToLower(v), strings.ToLower(first))
	case "in", "!in":
		in := v != "" && slices.ContainsFunc(vals, func(x string) bool { return normKey(x) == normKey(v) })
		return in == (op == "in")
	case "gt", "gte", "lt", "lte":
		if v == "" {
			return false
		}
		n := compare(v, first, false)
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			if _, err := strconv.ParseFloat(first, 64); err == nil {
				n = compare(v, first, true)
			}
		}
		switch op {
		case "gt":
			return n > 0
		case "gte":
			return n >= 0
		case "lt":
			return n < 0
		}
		return n <= 0
	}
	return false
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
