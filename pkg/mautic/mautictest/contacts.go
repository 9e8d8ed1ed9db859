package mautictest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	dbTime  = "2006-01-02 15:04:05"
	apiTime = "2006-01-02T15:04:05-07:00"
)

type contact struct {
	id             int
	vals           [numFields]string // "" is NULL
	points         int
	tags           []int // tag ids, ascending (database order)
	ips            []int
	dateAdded      time.Time
	dateModified   time.Time // zero: null
	dateIdentified time.Time // zero: null
	lastActive     time.Time
	hasLastActive  bool
}

func (c *contact) lastActiveDB() string {
	if !c.hasLastActive {
		return ""
	}
	return c.lastActive.Format(dbTime)
}

type tag struct {
	id   int
	name string
}

// contactInput is one contact of a request body, sorted out.
type contactInput struct {
	vals               map[int]string // writable fields sent (value may be "")
	tags               []string
	lastActive         string
	hasLastActive      bool
	ipAddress          string
	overwriteWithBlank bool
	id                 any
	hasID              bool
}

// writeMode is how a request body is applied to a contact.
type writeMode int

const (
	modeCreate writeMode = iota // new entity: non-empty values are set
	modePatch                   // existing entity: empty values skipped
	modePut                     // every field not sent is blanked
)

// --- request bodies ---

// errBadBody means the body could not be decoded; Mautic answers its generic
// 400 (transcript part 2, exchange 50).
type errBadBody struct{}

func (errBadBody) Error() string { return "malformed request body" }

// decodeBody decodes an /api request body the way Mautic's request listeners
// do: JSON (also when no Content-Type is given), urlencoded or multipart
// forms; any other content type gives no parameters.
func decodeBody(r *http.Request, body []byte) (any, error) {
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case ct == "application/json" || strings.HasSuffix(ct, "+json") || (ct == "" && len(bytes.TrimSpace(body)) > 0):
		if len(bytes.TrimSpace(body)) == 0 {
			return nil, nil
		}
		d := json.NewDecoder(bytes.NewReader(body))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return nil, errBadBody{}
		}
		if d.More() {
			return nil, errBadBody{}
		}
		switch v.(type) {
		case map[string]any, []any, nil:
			return v, nil
		}
		return nil, errBadBody{}
	case ct == "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errBadBody{}
		}
		return formToMap(v), nil
	case ct == "multipart/form-data":
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		f, err := mr.ReadForm(maxBody)
		if err != nil {
			return nil, errBadBody{}
		}
		return formToMap(url.Values(f.Value)), nil
	}
	return nil, nil
}

var bracketKey = regexp.MustCompile(`^([^\[]+)\[([^\]]*)\]$`)

// formToMap turns form fields into what PHP's parse_str makes of them, as
// far as a contact needs: tags[]=a&tags[]=b is a list; the last value of a
// repeated plain key wins.
func formToMap(v url.Values) map[string]any {
	m := map[string]any{}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vs := v[k]
		if sm := bracketKey.FindStringSubmatch(k); sm != nil {
			list, _ := m[sm[1]].([]any)
			for _, x := range vs {
				list = append(list, x)
			}
			m[sm[1]] = list
			continue
		}
		if strings.Contains(k, "[") {
			continue
		}
		m[k] = vs[len(vs)-1]
	}
	return m
}

// scalarString converts a JSON scalar as PHP's string cast would.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		if x {
			return "1", true
		}
		return "", true
	case nil:
		return "", true
	}
	return "", false
}

// phpEmpty is PHP's empty() for a decoded value.
func phpEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case string:
		return x == "" || x == "0"
	case json.Number:
		f, err := x.Float64()
		return err == nil && f == 0
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

func parseContactInput(m map[string]any) contactInput {
	in := contactInput{vals: map[int]string{}}
	for k, v := range m {
		switch k {
		case "tags":
			switch x := v.(type) {
			case []any:
				for _, t := range x {
					if s, ok := scalarString(t); ok {
						in.tags = append(in.tags, s)
					}
				}
			case map[string]any:
				keys := make([]string, 0, len(x))
				for tk := range x {
					keys = append(keys, tk)
				}
				sort.Strings(keys)
				for _, tk := range keys {
					if s, ok := scalarString(x[tk]); ok {
						in.tags = append(in.tags, s)
					}
				}
			default:
				if s, ok := scalarString(x); ok {
					in.tags = append(in.tags, strings.Split(s, ",")...)
				}
			}
		case "lastActive", "last_active":
			if s, ok := scalarString(v); ok {
				in.lastActive, in.hasLastActive = s, true
			}
		case "ipAddress":
			if s, ok := scalarString(v); ok {
				in.ipAddress = s
			}
		case "overwriteWithBlank":
			in.overwriteWithBlank = !phpEmpty(v)
		case "id":
			in.id, in.hasID = v, true
		default:
			f, ok := fieldByAlias[k]
			if !ok || !writable[f] {
				continue // unknown aliases are ignored (part 2, exchange 51)
			}
			if s, ok := scalarString(v); ok {
				if fieldDefs[f].typ == "email" {
					s = stripNonASCII(s)
				}
				in.vals[f] = s
			}
		}
	}
	return in
}

// stripNonASCII drops every character outside ASCII, as Mautic does to an
// e-mail before validating and storing it: "joão@example.com.br" becomes
// "joo@example.com.br", "ü@example.org" becomes "@example.org" (refused).
func stripNonASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return strings.Map(func(r rune) rune {
				if r >= utf8.RuneSelf {
					return -1
				}
				return r
			}, s)
		}
	}
	return s
}

// --- validation ---

var (
	emailLocalRE = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
	emailLabelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$`)
)

// validEmail approximates PHP's FILTER_VALIDATE_EMAIL, which Mautic's email
// validator uses: a dotted domain whose last label starts with a letter, so
// IP-literal domains ("a@192.168.0.1", "a@[10.0.0.1]") are refused, and
// labels of letters, digits and inner hyphens, so an underscore in the
// domain is refused too. Non-ASCII characters never get here: they were
// stripped (stripNonASCII).
func validEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || strings.Contains(domain, "@") || len(local) == 0 || len(local) > 64 || len(s) > 320 {
		return false
	}
	if !emailLocalRE.MatchString(local) {
		return false
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) > 63 || !emailLabelRE.MatchString(l) {
			return false
		}
	}
	last := labels[len(labels)-1]
	return (last[0] >= 'a' && last[0] <= 'z') || (last[0] >= 'A' && last[0] <= 'Z')
}

// refusedDomain reports whether the e-mail's domain is one of
// Options.RefuseEmailDomains.
func (s *Sim) refusedDomain(email string) bool {
	_, domain, _ := strings.Cut(email, "@")
	for _, d := range s.opts.RefuseEmailDomains {
		if strings.EqualFold(domain, d) {
			return true
		}
	}
	return false
}

// validationError is a form error: the message and the details object.
type validationError struct {
	msg     string
	details []byte
}

func (s *Sim) validateInput(in *contactInput) *validationError {
	if v, ok := in.vals[fEmail]; ok && v != "" && (!validEmail(v) || s.refusedDomain(v)) {
		d := []byte(`{"email":[`)
		d = appendJSONString(d, v+" is invalid.")
		d = append(d, "]}"...)
		return &validationError{msg: "email: " + v + " is invalid.", details: d}
	}
	return nil
}

// --- lastActive ---

var lastActiveLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05Z0700",
	"2006-01-02 15:04:05 Z07:00",
	"2006-01-02T15:04Z07:00",
	"2006-01-02 15:04Z07:00",
}

var lastActiveLocalLayouts = []string{
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseLastActive reads lastActive as Mautic does: no zone means UTC,
// offsets and Z are honoured, and what is not a date becomes 1970-01-01
// silently (transcript part 2, exchanges 2, 19–21).
func parseLastActive(s string) time.Time {
	s = strings.TrimSpace(s)
	for _, l := range lastActiveLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC().Truncate(time.Second)
		}
	}
	for _, l := range lastActiveLocalLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t.Truncate(time.Second)
		}
	}
	if n, err := strconv.ParseInt(strings.TrimPrefix(s, "@"), 10, 64); err == nil && strings.HasPrefix(s, "@") {
		return time.Unix(n, 0).UTC()
	}
	return time.Unix(0, 0).UTC()
}

// --- storage (call with s.mu held) ---

func normKey(v string) string { return strings.ToLower(strings.TrimRight(v, " ")) }

func (s *Sim) setVal(c *contact, f int, v string) {
	old := c.vals[f]
	if old == v {
		return
	}
	if idx := s.index[f]; idx != nil {
		if old != "" {
			k := normKey(old)
			ids := slices.DeleteFunc(idx[k], func(id int) bool { return id == c.id })
			if len(ids) == 0 {
				delete(idx, k)
			} else {
				idx[k] = ids
			}
		}
		if v != "" {
			k := normKey(v)
			idx[k] = append(idx[k], c.id)
		}
	}
	c.vals[f] = v
}

// findUnique returns the newest contact matching any unique identifier of
// in (Mautic's default OR operator); empty values never match.
func (s *Sim) findUnique(in *contactInput) *contact {
	best := 0
	for _, f := range s.unique {
		v := in.vals[f]
		if v == "" {
			continue
		}
		for _, id := range s.index[f][normKey(v)] {
			best = max(best, id)
		}
	}
	if best == 0 {
		return nil
	}
	return s.contacts[best]
}

func (s *Sim) createContact(now time.Time) *contact {
	c := &contact{id: s.nextContactID, dateAdded: now}
	s.nextContactID++
	s.contacts[c.id] = c
	s.order = append(s.order, c.id)
	return c
}

func (s *Sim) deleteContactLocked(c *contact) {
	for f := range s.index {
		s.setVal(c, f, "")
	}
	delete(s.contacts, c.id)
	if i, ok := slices.BinarySearch(s.order, c.id); ok {
		s.order = slices.Delete(s.order, i, i+1)
	}
	for _, seg := range s.segments {
		delete(seg.members, c.id)
	}
}

func (s *Sim) tagNamed(name string) *tag {
	key := strings.ToLower(name)
	if t := s.tagByName[key]; t != nil {
		return t
	}
	t := &tag{id: len(s.tags) + 1, name: name}
	s.tags = append(s.tags, t)
	s.tagByName[key] = t
	return t
}

// applyTags adds tags and removes "-tag"s; it returns the tag ids in the
// order a write response shows them (kept ones, then added ones).
func (s *Sim) applyTags(c *contact, names []string) []int {
	order := slices.Clone(c.tags)
	for _, n := range names {
		n = strings.TrimSpace(n)
		if rest, ok := strings.CutPrefix(n, "-"); ok {
			if t := s.tagByName[strings.ToLower(strings.TrimSpace(rest))]; t != nil {
				order = slices.DeleteFunc(order, func(id int) bool { return id == t.id })
			}
			continue
		}
		if n == "" {
			continue
		}
		t := s.tagNamed(n)
		if !slices.Contains(order, t.id) {
			order = append(order, t.id)
		}
	}
	c.tags = slices.Sorted(slices.Values(order))
	return order
}

func (s *Sim) ipID(addr string) int {
	if id, ok := s.ipByAddr[addr]; ok {
		return id
	}
	s.ips = append(s.ips, addr)
	s.ipByAddr[addr] = len(s.ips)
	return len(s.ips)
}

// apply writes in to c and returns the tag order for the response.
func (s *Sim) apply(c *contact, in *contactInput, mode writeMode, now time.Time) []int {
	for f := range numFields {
		if !writable[f] {
			continue
		}
		v, sent := in.vals[f]
		switch mode {
		case modePut:
			s.setVal(c, f, v)
		case modeCreate:
			if sent && v != "" {
				s.setVal(c, f, v)
			}
		case modePatch:
			if sent && (v != "" || in.overwriteWithBlank) {
				s.setVal(c, f, v)
			}
		}
	}
	switch {
	case in.hasLastActive && in.lastActive != "":
		c.lastActive, c.hasLastActive = parseLastActive(in.lastActive), true
	case mode == modePut, in.hasLastActive && in.overwriteWithBlank && mode == modePatch:
		c.lastActive, c.hasLastActive = time.Time{}, false
	}
	if ip := strings.TrimSpace(in.ipAddress); ip != "" {
		if parsed := net.ParseIP(ip); parsed != nil {
			if parsed.IsPrivate() || parsed.IsLoopback() || parsed.IsUnspecified() || parsed.IsLinkLocalUnicast() {
				ip = "127.0.0.1" // Mautic keeps no private address (part 2, exchange 20)
			}
			id := s.ipID(ip)
			if !slices.Contains(c.ips, id) {
				c.ips = append(c.ips, id)
			}
		}
	}
	order := s.applyTags(c, in.tags)
	if c.dateIdentified.IsZero() {
		for _, f := range identifying {
			if c.vals[f] != "" {
				c.dateIdentified = now
				break
			}
		}
	}
	if mode != modeCreate {
		c.dateModified = now
	}
	return order
}

// --- write outcomes ---

// outcome is the result of one contact write.
type outcome struct {
	status int
	c      *contact
	ro     renderOpts
	verr   *validationError
}

// createOrMatch is POST /api/contacts/new for one body: update the newest
// contact sharing a unique identifier (200), else create one (201).
func (s *Sim) createOrMatch(in *contactInput) outcome {
	existing := s.findUnique(in)
	if verr := s.validateInput(in); verr != nil {
		return outcome{status: http.StatusBadRequest, verr: verr}
	}
	now := s.nowSec()
	if existing != nil {
		stale := existing.lastActiveDB()
		order := s.apply(existing, in, modePatch, now)
		return outcome{status: http.StatusOK, c: existing, ro: renderOpts{stale: true, staleLA: stale, tagOrder: order}}
	}
	c := s.createContact(now)
	order := s.apply(c, in, modeCreate, now)
	return outcome{status: http.StatusCreated, c: c, ro: renderOpts{shapeNew: true, stale: true, tagOrder: order}}
}

// edit is PATCH/PUT of one contact; c nil means the id does not exist.
func (s *Sim) edit(c *contact, in *contactInput, put bool) outcome {
	if c == nil {
		if !put {
			return outcome{status: http.StatusNotFound}
		}
		if verr := s.validateInput(in); verr != nil {
			return outcome{status: http.StatusBadRequest, verr: verr}
		}
		now := s.nowSec()
		c = s.createContact(now)
		order := s.apply(c, in, modePut, now)
		return outcome{status: http.StatusCreated, c: c, ro: renderOpts{shapeNew: true, put: true, tagOrder: order}}
	}
	if verr := s.validateInput(in); verr != nil {
		return outcome{status: http.StatusBadRequest, c: c, verr: verr, ro: renderOpts{noAll: true}}
	}
	now := s.nowSec()
	if put {
		ro := renderOpts{put: true, oldTop: true}
		if c.hasLastActive {
			ro.oldLA = c.lastActive
		}
		ro.tagOrder = s.apply(c, in, modePut, now)
		return outcome{status: http.StatusOK, c: c, ro: ro}
	}
	stale := c.lastActiveDB()
	order := s.apply(c, in, modePatch, now)
	return outcome{status: http.StatusOK, c: c, ro: renderOpts{stale: true, staleLA: stale, tagOrder: order}}
}

// --- handlers ---

// bodyObject decodes a single-entity body; it answers the 400 itself.
func (s *Sim) bodyObject(w http.ResponseWriter, r *http.Request, body []byte) (map[string]any, bool) {
	v, err := decodeBody(r, body)
	if err != nil {
		writeGenericError(w, http.StatusBadRequest)
		return nil, false
	}
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m, true
}

// writeOutcome answers a single-entity write.
func (s *Sim) writeOutcome(w http.ResponseWriter, o outcome) {
	switch {
	case o.status == http.StatusNotFound:
		s.mu.Unlock()
		s.notFound(w)
		return
	case o.verr != nil:
		s.mu.Unlock()
		s.writeAPI(w, o.status, controllerError(o.status, o.verr.msg, o.verr.details))
		return
	}
	b := append([]byte(`{"contact":`), s.appendContact(nil, o.c, o.ro)...)
	b = append(b, '}')
	id := o.c.id
	s.mu.Unlock()
	if o.status == http.StatusCreated {
		w.Header().Set("Location", "/api/contacts/"+strconv.Itoa(id))
	}
	s.writeAPI(w, o.status, b)
}

func (s *Sim) newContact(w http.ResponseWriter, r *http.Request, call *apiCall) {
	m, ok := s.bodyObject(w, r, call.body)
	if !ok {
		return
	}
	in := parseContactInput(m)
	s.mu.Lock()
	s.writeOutcome(w, s.createOrMatch(&in))
}

func (s *Sim) editContact(w http.ResponseWriter, r *http.Request, call *apiCall) {
	m, ok := s.bodyObject(w, r, call.body)
	if !ok {
		return
	}
	in := parseContactInput(m)
	s.mu.Lock()
	s.writeOutcome(w, s.edit(s.contacts[call.args[0]], &in, r.Method == http.MethodPut))
}

func (s *Sim) getContact(w http.ResponseWriter, r *http.Request, call *apiCall) {
	s.mu.Lock()
	c := s.contacts[call.args[0]]
	if c == nil {
		s.mu.Unlock()
		s.notFound(w)
		return
	}
	b := append([]byte(`{"contact":`), s.appendContact(nil, c, renderOpts{})...)
	s.mu.Unlock()
	s.writeAPI(w, http.StatusOK, append(b, '}'))
}

func (s *Sim) deleteContact(w http.ResponseWriter, r *http.Request, call *apiCall) {
	s.mu.Lock()
	c := s.contacts[call.args[0]]
	if c == nil {
		s.mu.Unlock()
		s.notFound(w)
		return
	}
	b := append([]byte(`{"contact":`), s.appendContact(nil, c, renderOpts{deleted: true})...)
	s.deleteContactLocked(c)
	s.mu.Unlock()
	s.writeAPI(w, http.StatusOK, append(b, '}'))
}

// batchItems decodes a batch body into its items, keyed by index. It answers
// the error itself and returns false.
func (s *Sim) batchItems(w http.ResponseWriter, r *http.Request, body []byte) ([]map[string]any, bool) {
	v, err := decodeBody(r, body)
	if err != nil {
		writeGenericError(w, http.StatusBadRequest)
		return nil, false
	}
	var raw []any
	switch x := v.(type) {
	case nil:
	case []any:
		raw = x
	case map[string]any:
		// A PHP array with numeric keys is a list too.
		keys := make([]int, 0, len(x))
		for k := range x {
			n, err := strconv.Atoi(k)
			if err != nil || !isDigits(k) {
				writeGenericError(w, http.StatusInternalServerError)
				return nil, false
			}
			keys = append(keys, n)
		}
		sort.Ints(keys)
		for i, k := range keys {
			if i != k {
				writeGenericError(w, http.StatusInternalServerError)
				return nil, false
			}
			raw = append(raw, x[strconv.Itoa(k)])
		}
	}
	if len(raw) > s.opts.BatchLimit {
		msg := fmt.Sprintf("A max of %d entities are supported at a time.", s.opts.BatchLimit)
		s.writeAPI(w, http.StatusInternalServerError, controllerError(http.StatusInternalServerError, msg, nil))
		return nil, false
	}
	items := make([]map[string]any, len(raw))
	for i, it := range raw {
		switch x := it.(type) {
		case map[string]any:
			items[i] = x
		case []any:
			items[i] = map[string]any{}
		default:
			// PHP: a TypeError in getNewEntity(array $params).
			writeGenericError(w, http.StatusInternalServerError)
			return nil, false
		}
	}
	return items, true
}

// keyedEntity is one entry of a batch answer's "contacts", keyed by the
// index of the request item it belongs to.
type keyedEntity struct {
	key int
	c   *contact
	ro  renderOpts
}

// batchError is one entry of a batch answer's "errors".
type batchError struct {
	key  int
	body []byte
}

func validationItem(v *validationError) []byte {
	b := []byte(`{"code":400,"message":`)
	b = appendJSONString(b, v.msg)
	b = append(b, `,"details":`...)
	b = append(b, v.details...)
	return append(b, `,"type":null}`...)
}

var notFoundItem = []byte(`{"message":"Item was not found.","code":404,"type":"api"}`)

func (s *Sim) newContacts(w http.ResponseWriter, r *http.Request, call *apiCall) {
	items, ok := s.batchItems(w, r, call.body)
	if !ok {
		return
	}
	inputs := make([]contactInput, len(items))
	for i, m := range items {
		inputs[i] = parseContactInput(m)
	}
	s.mu.Lock()
	var (
		entities []keyedEntity
		errs     []batchError
		codes    = make([]int, len(items))
	)
	for i := range inputs {
		o := s.createOrMatch(&inputs[i])
		codes[i] = o.status
		if o.verr != nil {
			errs = append(errs, batchError{i, validationItem(o.verr)})
			continue
		}
		entities = append(entities, keyedEntity{i, o.c, o.ro})
	}
	b := s.appendBatch(nil, entities, codes, errs)
	s.mu.Unlock()
	s.writeAPI(w, http.StatusCreated, b)
}

func (s *Sim) editContacts(w http.ResponseWriter, r *http.Request, call *apiCall) {
	items, ok := s.batchItems(w, r, call.body)
	if !ok {
		return
	}
	put := r.Method == http.MethodPut
	inputs := make([]contactInput, len(items))
	for i, m := range items {
		inputs[i] = parseContactInput(m)
	}
	s.mu.Lock()
	var (
		entities []keyedEntity
		errs     []batchError
		codes    = make([]int, len(items))
		found    = make([]*contact, len(items))
	)
	// Entities that exist are loaded first, in request order.
	for i := range inputs {
		if c := s.contactByParam(inputs[i].id, inputs[i].hasID); c != nil {
			found[i] = c
			entities = append(entities, keyedEntity{key: i, c: c})
		}
	}
	setRO := func(key int, ro renderOpts) {
		for j := range entities {
			if entities[j].key == key {
				entities[j].ro = ro
			}
		}
	}
	for i := range inputs {
		o := s.edit(found[i], &inputs[i], put)
		codes[i] = o.status
		switch {
		case o.status == http.StatusNotFound:
			errs = append(errs, batchError{i, notFoundItem})
		case o.verr != nil:
			errs = append(errs, batchError{i, validationItem(o.verr)})
			setRO(i, o.ro)
		case found[i] == nil:
			entities = append(entities, keyedEntity{i, o.c, o.ro})
		default:
			setRO(i, o.ro)
		}
	}
	b := s.appendBatch(nil, entities, codes, errs)
	s.mu.Unlock()
	s.writeAPI(w, http.StatusOK, b)
}

// contactByParam finds the contact an "id" item field names.
func (s *Sim) contactByParam(v any, has bool) *contact {
	if !has {
		return nil
	}
	str, ok := scalarString(v)
	if !ok || !isDigits(str) {
		return nil
	}
	id, err := strconv.Atoi(str)
	if err != nil {
		return nil
	}
	return s.contacts[id]
}

// appendBatch renders {"contacts":…,"statusCodes":[…],"errors":…}. PHP
// arrays become JSON lists only when their keys run 0..n-1; otherwise they
// are objects keyed by request index, as Mautic's serializer renders them.
func (s *Sim) appendBatch(b []byte, entities []keyedEntity, codes []int, errs []batchError) []byte {
	b = append(b, `{"contacts":`...)
	isList := true
	for i, e := range entities {
		isList = isList && e.key == i
	}
	if isList {
		b = append(b, '[')
	} else {
		b = append(b, '{')
	}
	for i, e := range entities {
		if i > 0 {
			b = append(b, ',')
		}
		if !isList {
			b = appendJSONString(b, strconv.Itoa(e.key))
			b = append(b, ':')
		}
		b = s.appendContact(b, e.c, e.ro)
	}
	if isList {
		b = append(b, ']')
	} else {
		b = append(b, '}')
	}
	b = append(b, `,"statusCodes":[`...)
	for i, c := range codes {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(c), 10)
	}
	b = append(b, ']')
	if len(errs) > 0 {
		b = append(b, `,"errors":`...)
		isList = true
		for i, e := range errs {
			isList = isList && e.key == i
		}
		if isList {
			b = append(b, '[')
		} else {
			b = append(b, '{')
		}
		for i, e := range errs {
			if i > 0 {
				b = append(b, ',')
			}
			if !isList {
				b = appendJSONString(b, strconv.Itoa(e.key))
				b = append(b, ':')
			}
			b = append(b, e.body...)
		}
		if isList {
			b = append(b, ']')
		} else {
			b = append(b, '}')
		}
	}
	return append(b, '}')
}
