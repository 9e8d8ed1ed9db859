package mautictest

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// This file lists entities other than contacts (tags, segments) the way
// Mautic's FetchCommonApiController::getEntitiesAction does over an ORM
// repository: where[] on the entity's properties, search= through the
// repository's commands and catch-all, orderBy/orderByDir, start/limit, and
// an answer {"total":N,"<entities>":{id:{…}}} with total a number (the
// Paginator's count; contacts, read through DBAL, have it as a string) and
// [] when nothing matched.

// cell is one property of an entity row as SQL sees it.
type cell struct {
	val     string
	null    bool
	numeric bool
}

// row is an entity's properties by ORM name ("id", "alias", "isPublished").
type row map[string]cell

func textCell(v string) cell     { return cell{val: v} }
func nullableCell(v string) cell { return cell{val: v, null: v == ""} }
func intCell(n int) cell         { return cell{val: strconv.Itoa(n), numeric: true} }

func boolCell(b bool) cell {
	if b {
		return cell{val: "1", numeric: true}
	}
	return cell{val: "0", numeric: true}
}

func (r row) get(col string) cell { return r[col] }

// rowCond is one filter on an entity row.
type rowCond func(r row) bool

// entityColumn resolves a where/orderBy column ("l.alias", "alias") to a
// property of the entity; unknown properties are a DQL error (a 500).
func entityColumn(col string, props []string) (string, error) {
	if _, after, ok := strings.Cut(col, "."); ok {
		col = after
	}
	if !slices.Contains(props, col) {
		return "", errBadQuery
	}
	return col, nil
}

// entityWhere builds the filters of a where[] array over entity rows
// (CommonRepository::buildWhereClauseFromArray).
func entityWhere(where map[string]any, props []string) ([]rowCond, error) {
	var conds []rowCond
	for _, k := range sortedKeys(where) {
		clause, ok := where[k].(map[string]any)
		if !ok {
			return nil, errBadQuery
		}
		c, err := entityWhereClause(clause, props)
		if err != nil {
			return nil, err
		}
		conds = append(conds, c)
	}
	return conds, nil
}

func entityWhereClause(clause map[string]any, props []string) (rowCond, error) {
	expr, _ := clause["expr"].(string)
	if expr == "andX" || expr == "orX" {
		sub, ok := clause["val"].(map[string]any)
		if !ok {
			return nil, errBadQuery
		}
		conds, err := entityWhere(sub, props)
		if err != nil {
			return nil, err
		}
		and := expr == "andX"
		return func(r row) bool {
			for _, f := range conds {
				if f(r) != and {
					return !and
				}
			}
			return and
		}, nil
	}
	colName, _ := clause["col"].(string)
	if colName == "" {
		colName, _ = clause["column"].(string)
	}
	col, err := entityColumn(colName, props)
	if err != nil {
		return nil, err
	}
	val, _ := clause["val"].(string)
	cmp := func(pred func(int) bool) rowCond {
		return func(r row) bool {
			c := r.get(col)
			return !c.null && pred(compare(c.val, val, c.numeric))
		}
	}
	if pred, ok := orderings[expr]; ok {
		return cmp(pred), nil
	}
	switch expr {
	case "like", "notLike":
		want := expr == "like"
		return func(r row) bool {
			c := r.get(col)
			return !c.null && likeMatch(c.val, val) == want
		}, nil
	case "isNull", "isNotNull":
		want := expr == "isNull"
		return func(r row) bool { return r.get(col).null == want }, nil
	case "isEmpty", "isNotEmpty":
		want := expr == "isEmpty"
		return func(r row) bool { c := r.get(col); return (c.null || c.val == "") == want }, nil
	case "in", "notIn":
		vals := listValues(clause["val"])
		want := expr == "in"
		return func(r row) bool {
			c := r.get(col)
			if c.null {
				return false
			}
			return slices.ContainsFunc(vals, func(x string) bool { return compare(c.val, x, c.numeric) == 0 }) == want
		}, nil
	}
	return nil, errBadQuery
}

// entityList is one entity type for listEntities.
type entityList struct {
	multi string   // the answer's key: "tags", "lists"
	props []string // where/orderBy properties
	// search builds the filters of search=; nil ignores it.
	search func(q string) []rowCond
	// defaultOrder is the repository's getDefaultOrder (ascending); ""
	// keeps the database order (by id).
	defaultOrder string
}

// listEntities answers GET /api/<entities>. rows are in id order; render
// appends one entity's JSON. Call without s.mu held: it takes it.
func (s *Sim) listEntities(w http.ResponseWriter, r *http.Request, el entityList, rows func() ([]int, []row), render func(b []byte, id int) []byte) {
	q := r.URL.Query()
	var conds []rowCond
	if where, ok := phpQuery(r.URL.RawQuery)["where"].(map[string]any); ok {
		wc, err := entityWhere(where, el.props)
		if err != nil {
			writeGenericError(w, http.StatusInternalServerError)
			return
		}
		conds = wc
	}
	if el.search != nil {
		conds = append(conds, el.search(q.Get("search"))...)
	}
	orderCol, desc := el.defaultOrder, false
	if ob := q.Get("orderBy"); ob != "" {
		col, err := entityColumn(strings.TrimSpace(strings.Split(ob, ",")[0]), el.props)
		if err != nil {
			writeGenericError(w, http.StatusInternalServerError)
			return
		}
		orderCol = col
		desc = strings.EqualFold(q.Get("orderByDir"), "DESC")
	}
	start, limit := pageArgs(q)

	s.mu.Lock()
	defer s.mu.Unlock()
	ids, all := rows()
	type hit struct {
		id int
		r  row
	}
	var hits []hit
	for i, rw := range all {
		ok := true
		for _, f := range conds {
			if ok = f(rw); !ok {
				break
			}
		}
		if ok {
			hits = append(hits, hit{ids[i], rw})
		}
	}
	if orderCol != "" {
		slices.SortStableFunc(hits, func(a, b hit) int {
			ca, cb := a.r.get(orderCol), b.r.get(orderCol)
			var n int
			switch {
			case ca.null && cb.null:
			case ca.null:
				n = -1
			case cb.null:
				n = 1
			default:
				n = compare(ca.val, cb.val, ca.numeric)
			}
			if desc {
				n = -n
			}
			if n == 0 {
				n = a.id - b.id
			}
			return n
		})
	}
	total := len(hits)
	hits = hits[min(start, len(hits)):]
	if limit > 0 && len(hits) > limit {
		hits = hits[:limit]
	}
	b := []byte(`{"total":`)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, `,"`...)
	b = append(b, el.multi...)
	b = append(b, `":`...)
	if len(hits) == 0 {
		b = append(b, "[]"...)
	} else {
		b = append(b, '{')
		for i, h := range hits {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = strconv.AppendInt(b, int64(h.id), 10)
			b = append(b, `":`...)
			b = render(b, h.id)
		}
		b = append(b, '}')
	}
	s.writeAPI(w, http.StatusOK, append(b, '}'))
}

// pageArgs reads start and limit (default_pagelimit 30; 0 means all).
func pageArgs(q url.Values) (start, limit int) {
	start, _ = strconv.Atoi(q.Get("start"))
	limit = 30
	if q.Has("limit") {
		limit, _ = strconv.Atoi(q.Get("limit"))
	}
	return max(start, 0), max(limit, 0)
}

// searchTerm is one token of a search string: its command (before ":"),
// argument, and the "!" (not) and "+" (strict) marks.
type searchTerm struct {
	command, arg, word string
	hasCommand         bool
	not, strict        bool
}

func parseSearch(q string) []searchTerm {
	var out []searchTerm
	for _, tok := range searchTokens(q) {
		if strings.EqualFold(tok, "OR") || strings.EqualFold(tok, "AND") {
			continue
		}
		var t searchTerm
		tok, t.not = strings.CutPrefix(tok, "!")
		tok, t.strict = strings.CutPrefix(tok, "+")
		t.word = tok
		t.command, t.arg, t.hasCommand = strings.Cut(tok, ":")
		out = append(out, t)
	}
	return out
}

// idsCond is the ids: command (CommonRepository::getIdsExpr).
func idsCond(arg string) rowCond {
	var ids []string
	for _, p := range strings.Split(arg, ",") {
		ids = append(ids, strconv.Itoa(phpInt(p)))
	}
	return func(r row) bool { return slices.Contains(ids, r.get("id").val) }
}

// phpInt is PHP's (int) cast of a string: leading blanks, a sign, digits.
func phpInt(s string) int {
	s = strings.TrimLeft(s, " \t\n\r\v\f")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	n := 0
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
		if n > 1<<53 {
			break
		}
	}
	if neg {
		return -n
	}
	return n
}

func notCond(c rowCond) rowCond { return func(r row) bool { return !c(r) } }
