package mautictest

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// cond is one filter on a contact.
type cond func(s *Sim, c *contact) bool

// errBadQuery is a filter Mautic would turn into an SQL error (unknown
// column or expression): a 500 from the exception listener.
var errBadQuery = errors.New("bad query")

// column returns how to read a where/orderBy column of a contact: its text
// (SQL NULL as ok=false) and whether it compares as a number.
func column(name string) (get func(s *Sim, c *contact) (string, bool), numeric bool, err error) {
	name = strings.TrimPrefix(name, "l.")
	switch name {
	case "id":
		return func(_ *Sim, c *contact) (string, bool) { return strconv.Itoa(c.id), true }, true, nil
	case "points":
		return func(_ *Sim, c *contact) (string, bool) { return strconv.Itoa(c.points), true }, true, nil
	case "date_added", "dateAdded":
		return func(_ *Sim, c *contact) (string, bool) { return c.dateAdded.Format(dbTime), true }, false, nil
	case "date_modified", "dateModified":
		return func(_ *Sim, c *contact) (string, bool) {
			return c.dateModified.Format(dbTime), !c.dateModified.IsZero()
		}, false, nil
	case "date_identified", "dateIdentified":
		return func(_ *Sim, c *contact) (string, bool) {
			return c.dateIdentified.Format(dbTime), !c.dateIdentified.IsZero()
		}, false, nil
	case "last_active", "lastActive":
		return func(_ *Sim, c *contact) (string, bool) { return c.lastActiveDB(), c.hasLastActive }, false, nil
	}
	f, ok := fieldByAlias[name]
	if !ok || !writable[f] {
		return nil, false, errBadQuery
	}
	return func(_ *Sim, c *contact) (string, bool) { return c.vals[f], c.vals[f] != "" }, false, nil
}

// likeMatch is SQL LIKE with a case-insensitive collation: % any run, _ one
// character, \ escapes.
func likeMatch(s, pattern string) bool {
	s, pattern = strings.ToLower(s), strings.ToLower(pattern)
	// Fast paths for the common shapes.
	if !strings.ContainsAny(pattern, `_\`) {
		switch strings.Count(pattern, "%") {
		case 0:
			return strings.TrimRight(s, " ") == strings.TrimRight(pattern, " ")
		case 1:
			if p, ok := strings.CutSuffix(pattern, "%"); ok {
				return strings.HasPrefix(s, p)
			}
		case 2:
			if strings.HasPrefix(pattern, "%") && strings.HasSuffix(pattern, "%") && len(pattern) >= 2 {
				return strings.Contains(s, pattern[1:len(pattern)-1])
			}
		}
	}
	return likeRec(s, pattern)
}

func likeRec(s, p string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '%':
			for len(p) > 0 && p[0] == '%' {
				p = p[1:]
			}
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if likeRec(s[i:], p) {
					return true
				}
			}
			return false
		case '_':
			if s == "" {
				return false
			}
			_, n := utf8.DecodeRuneInString(s)
			s, p = s[n:], p[1:]
		case '\\':
			if len(p) > 1 {
				p = p[1:]
			}
			fallthrough
		default:
			if s == "" || s[0] != p[0] {
				return false
			}
			s, p = s[1:], p[1:]
		}
	}
	return s == ""
}

// compare compares a column value with a request value, as MySQL would.
func compare(a, b string, numeric bool) int {
	if numeric {
		x, _ := strconv.ParseFloat(a, 64)
		y, _ := strconv.ParseFloat(b, 64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	return strings.Compare(normKey(a), normKey(b))
}

// listValues reads an in/notIn/between value: a list, or a comma string.
func listValues(v any) []string {
	switch x := v.(type) {
	case string:
		return strings.Split(x, ",")
	case map[string]any:
		var out []string
		for _, k := range sortedKeys(x) {
			if s, ok := x[k].(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		x, errA := strconv.Atoi(a)
		y, errB := strconv.Atoi(b)
		if errA == nil && errB == nil {
			return x - y
		}
		return strings.Compare(a, b)
	})
	return keys
}

// whereConds builds the filters of a where[] array (CommonRepository's
// buildWhereClauseFromArray).
func whereConds(where map[string]any) ([]cond, error) {
	var conds []cond
	for _, k := range sortedKeys(where) {
		clause, ok := where[k].(map[string]any)
		if !ok {
			return nil, errBadQuery
		}
		if _, internal := clause["internal"]; internal {
			continue
		}
		c, err := whereCond(clause)
		if err != nil {
			return nil, err
		}
		conds = append(conds, c)
	}
	return conds, nil
}

func whereCond(clause map[string]any) (cond, error) {
	expr, _ := clause["expr"].(string)
	if expr == "andX" || expr == "orX" {
		sub, ok := clause["val"].(map[string]any)
		if !ok {
			return nil, errBadQuery
		}
		conds, err := whereConds(sub)
		if err != nil {
			return nil, err
		}
		if expr == "andX" {
			return func(s *Sim, c *contact) bool {
				for _, f := range conds {
					if !f(s, c) {
						return false
					}
				}
				return true
			}, nil
		}
		return func(s *Sim, c *contact) bool {
			for _, f := range conds {
				if f(s, c) {
					return true
				}
			}
			return false
		}, nil
	}
	col, _ := clause["col"].(string)
	get, numeric, err := column(col)
	if err != nil {
		return nil, err
	}
	val, _ := clause["val"].(string)
	cmp := func(pred func(int) bool) cond {
		return func(s *Sim, c *contact) bool {
			v, ok := get(s, c)
			return ok && pred(compare(v, val, numeric))
		}
	}
	if pred, ok := orderings[expr]; ok {
		return cmp(pred), nil
	}
	switch expr {
	case "like", "notLike":
		want := expr == "like"
		return func(s *Sim, c *contact) bool {
			v, ok := get(s, c)
			return ok && likeMatch(v, val) == want
		}, nil
	case "isNull", "isEmpty":
		return func(s *Sim, c *contact) bool { _, ok := get(s, c); return !ok }, nil
	case "isNotNull", "isNotEmpty":
		return func(s *Sim, c *contact) bool { _, ok := get(s, c); return ok }, nil
	case "in", "notIn":
		vals := listValues(clause["val"])
		want := expr == "in"
		return func(s *Sim, c *contact) bool {
			v, ok := get(s, c)
			if !ok {
				return false
			}
			found := slices.ContainsFunc(vals, func(x string) bool { return compare(v, x, numeric) == 0 })
			return found == want
		}, nil
	case "between", "notBetween":
		vals := listValues(clause["val"])
		if len(vals) != 2 {
			return nil, errBadQuery
		}
		want := expr == "between"
		return func(s *Sim, c *contact) bool {
			v, ok := get(s, c)
			return ok && (compare(v, vals[0], numeric) >= 0 && compare(v, vals[1], numeric) <= 0) == want
		}, nil
	}
	return nil, errBadQuery
}

// searchTokens splits a search string as Mautic's SearchStringHelper does:
// on spaces, keeping "double quoted" runs together.
func searchTokens(q string) []string {
	var (
		out   []string
		cur   strings.Builder
		quote bool
	)
	for _, r := range q {
		switch {
		case r == '"':
			quote = !quote
		case r == ' ' && !quote:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// catchAll are the columns a plain search word looks in.
var catchAll = []int{fFirstname, fLastname, fEmail, fCompany, fCity, fState, fZipcode, fCountry, fFacebook, fFoursquare, fInstagram, fLinkedin, fSkype, fTwitter}

// searchConds builds the filters of search= (LeadRepository): commands
// (email:, tag:, name:, ip:, ids:, is:anonymous, any field alias) are
// prefix matches unless the term starts with "+" (strict); "!" negates; a
// plain word matches anywhere in the catch-all columns.
func searchConds(q string) []cond {
	var conds []cond
	for _, tok := range searchTokens(q) {
		if strings.EqualFold(tok, "OR") || strings.EqualFold(tok, "AND") {
			continue
		}
		not := false
		if rest, ok := strings.CutPrefix(tok, "!"); ok {
			tok, not = rest, true
		}
		strict := false
		if rest, ok := strings.CutPrefix(tok, "+"); ok {
			tok, strict = rest, true
		}
		c := searchCond(tok, strict)
		if not {
			inner := c
			c = func(s *Sim, ct *contact) bool { return !inner(s, ct) }
		}
		conds = append(conds, c)
	}
	return conds
}

func searchCond(tok string, strict bool) cond {
	command, arg, hasCommand := strings.Cut(tok, ":")
	pattern := arg
	if !strict {
		pattern = arg + "%"
	}
	if hasCommand {
		switch command {
		case "email":
			return func(_ *Sim, c *contact) bool { return c.vals[fEmail] != "" && likeMatch(c.vals[fEmail], pattern) }
		case "name":
			return func(_ *Sim, c *contact) bool {
				return (c.vals[fFirstname] != "" && likeMatch(c.vals[fFirstname], pattern)) ||
					(c.vals[fLastname] != "" && likeMatch(c.vals[fLastname], pattern))
			}
		case "tag":
			return func(s *Sim, c *contact) bool {
				for _, id := range c.tags {
					if likeMatch(s.tags[id-1].name, pattern) {
						return true
					}
				}
				return false
			}
		case "ip":
			return func(s *Sim, c *contact) bool {
				for _, id := range c.ips {
					if likeMatch(s.ips[id-1], pattern) {
						return true
					}
				}
				return false
			}
		case "segment":
			// An exact alias, members not removed by hand (LeadRepository).
			return func(s *Sim, c *contact) bool { return s.inSegment(c.id, arg) }
		case "ids":
			ids := strings.Split(arg, ",")
			return func(_ *Sim, c *contact) bool { return slices.Contains(ids, strconv.Itoa(c.id)) }
		case "is":
			if arg == "anonymous" {
				return func(_ *Sim, c *contact) bool { return c.dateIdentified.IsZero() }
			}
		default:
			if f, ok := fieldByAlias[command]; ok && writable[f] {
				return func(_ *Sim, c *contact) bool { return c.vals[f] != "" && likeMatch(c.vals[f], pattern) }
			}
		}
	}
	// Not a command: the catch-all, a contains match.
	pattern = tok
	if !strict && !strings.Contains(tok, "%") {
		pattern = "%" + tok + "%"
	}
	return func(_ *Sim, c *contact) bool {
		for _, f := range catchAll {
			if c.vals[f] != "" && likeMatch(c.vals[f], pattern) {
				return true
			}
		}
		return false
	}
}

// phpQuery parses a query string into PHP's nested arrays, as far as
// where[0][col]=… needs: leaves are strings, branches map[string]any.
func phpQuery(raw string) map[string]any {
	root := map[string]any{}
	vals, _ := url.ParseQuery(raw)
	for key, vs := range vals {
		name, rest, _ := strings.Cut(key, "[")
		path := []string{name}
		if rest != "" {
			rest = "[" + rest
			for strings.HasPrefix(rest, "[") {
				end := strings.IndexByte(rest, ']')
				if end < 0 {
					break
				}
				path = append(path, rest[1:end])
				rest = rest[end+1:]
			}
		}
		node := root
		for i, p := range path {
			if i == len(path)-1 {
				node[p] = vs[len(vs)-1]
				break
			}
			next, ok := node[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				node[p] = next
			}
			node = next
		}
	}
	return root
}

// phpTruthy is a query parameter as a PHP boolean.
func phpTruthy(v string) bool { return v != "" && v != "0" }

func (s *Sim) listContacts(w http.ResponseWriter, r *http.Request, call *apiCall) {
	q := r.URL.Query()
	var conds []cond
	if where, ok := phpQuery(r.URL.RawQuery)["where"].(map[string]any); ok {
		wc, err := whereConds(where)
		if err != nil {
			writeGenericError(w, http.StatusInternalServerError)
			return
		}
		conds = append(conds, wc...)
	}
	conds = append(conds, searchConds(q.Get("search"))...)

	start, _ := strconv.Atoi(q.Get("start"))
	start = max(start, 0)
	limit := 30 // default_pagelimit
	if q.Has("limit") {
		limit, _ = strconv.Atoi(q.Get("limit"))
	}
	orderGet, orderNumeric := func(_ *Sim, c *contact) (string, bool) { return c.lastActiveDB(), c.hasLastActive }, false
	desc := true
	if ob := q.Get("orderBy"); ob != "" {
		get, numeric, err := column(strings.Split(ob, ",")[0])
		if err != nil {
			writeGenericError(w, http.StatusInternalServerError)
			return
		}
		orderGet, orderNumeric = get, numeric
		desc = strings.EqualFold(q.Get("orderByDir"), "DESC")
	}
	minimal := phpTruthy(q.Get("minimal"))

	s.mu.Lock()
	matches := s.candidates(r.URL.RawQuery)
	var hits []*contact
	for _, id := range matches {
		c := s.contacts[id]
		ok := c != nil
		for _, f := range conds {
			if !ok {
				break
			}
			ok = f(s, c)
		}
		if ok {
			hits = append(hits, c)
		}
	}
	// MySQL: NULLs first ascending, last descending; ties by id.
	slices.SortStableFunc(hits, func(a, b *contact) int {
		va, oka := orderGet(s, a)
		vb, okb := orderGet(s, b)
		var n int
		switch {
		case !oka && !okb:
			n = 0
		case !oka:
			n = -1
		case !okb:
			n = 1
		default:
			n = compare(va, vb, orderNumeric)
		}
		if desc {
			n = -n
		}
		if n == 0 {
			n = a.id - b.id
		}
		return n
	})
	total := len(hits)
	if start < len(hits) {
		hits = hits[start:]
	} else {
		hits = nil
	}
	if limit > 0 && len(hits) > limit {
		hits = hits[:limit]
	}
	b := []byte(`{"total":"`)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, `","contacts":{`...)
	for i, c := range hits {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, int64(c.id), 10)
		b = append(b, `":`...)
		b = s.appendContact(b, c, renderOpts{minimal: minimal})
	}
	s.mu.Unlock()
	s.writeAPI(w, http.StatusOK, append(b, "}}"...))
}

// candidates narrows a list query through the value index when its where[]
// holds a top-level eq on an indexed column; otherwise every contact. Call
// with s.mu held; the filters still run on every candidate.
func (s *Sim) candidates(rawQuery string) []int {
	if where, ok := phpQuery(rawQuery)["where"].(map[string]any); ok {
		for _, v := range where {
			clause, ok := v.(map[string]any)
			if !ok || clause["expr"] != "eq" {
				continue
			}
			col, _ := clause["col"].(string)
			f, ok := fieldByAlias[strings.TrimPrefix(col, "l.")]
			if !ok || s.index[f] == nil {
				continue
			}
			val, _ := clause["val"].(string)
			ids := slices.Clone(s.index[f][normKey(val)])
			slices.Sort(ids)
			return ids
		}
	}
	return s.order
}

// orderings are the where expressions that compare a column with a value,
// as predicates on compare's result: for contacts and for other entities.
var orderings = map[string]func(int) bool{
	"eq":  func(n int) bool { return n == 0 },
	"neq": func(n int) bool { return n != 0 },
	"lt":  func(n int) bool { return n < 0 },
	"lte": func(n int) bool { return n <= 0 },
	"gt":  func(n int) bool { return n > 0 },
	"gte": func(n int) bool { return n >= 0 },
}
