package mautictest

import "strconv"

// fieldDef is one of the contact fields a fresh Mautic 5.1.0 installs, as
// its API renders them (captured in transcripts part 2, bodies 02 and 03).
type fieldDef struct {
	id          int
	group       string
	label       string
	alias       string
	typ         string
	propsNew    string // "properties" of a field object of a new entity (JSON)
	propsLoaded string // "properties" of a loaded entity: PHP-serialized, as text
	defaultVal  string // "default_value" of a loaded entity (JSON literal)
	isFixed     string

	// Precomputed JSON up to and including `"value":`.
	newPrefix    []byte
	loadedPrefix []byte
}

// Indexes into fieldDefs of the fields with special handling.
const (
	fTitle = iota
	fFirstname
	fLastname
	fCompany
	fPosition
	fEmail
	fMobile
	fPhone
	fPoints
	fFax
	fAddress1
	fAddress2
	fCity
	fState
	fZipcode
	fCountry
	fPreferredLocale
	fTimezone
	fLastActive
	fAttributionDate
	fAttribution
	fWebsite
	fFacebook
	fFoursquare
	fInstagram
	fLinkedin
	fSkype
	fTwitter
	numFields
)

// fieldDefs lists the 22 core and 6 social fields in Mautic's order.
var fieldDefs = [numFields]fieldDef{
	{id: 1, group: "core", label: "Title", alias: "title", typ: "lookup", propsNew: `{"list":["Mr","Mrs","Miss"]}`, propsLoaded: `a:1:{s:4:"list";a:3:{i:0;s:2:"Mr";i:1;s:3:"Mrs";i:2;s:4:"Miss";}}`, defaultVal: "null", isFixed: "1"},
	{id: 2, group: "core", label: "First Name", alias: "firstname", typ: "text", isFixed: "1"},
	{id: 3, group: "core", label: "Last Name", alias: "lastname", typ: "text", isFixed: "1"},
	{id: 4, group: "core", label: "Primary company", alias: "company", typ: "text", isFixed: "1"},
	{id: 5, group: "core", label: "Position", alias: "position", typ: "text", isFixed: "1"},
	{id: 6, group: "core", label: "Email", alias: "email", typ: "email", isFixed: "1"},
	{id: 7, group: "core", label: "Mobile", alias: "mobile", typ: "tel", isFixed: "1"},
	{id: 8, group: "core", label: "Phone", alias: "phone", typ: "tel", isFixed: "1"},
	{id: 9, group: "core", label: "Points", alias: "points", typ: "number", defaultVal: `"0"`, isFixed: "1"},
	{id: 10, group: "core", label: "Fax", alias: "fax", typ: "tel", isFixed: "0"},
	{id: 11, group: "core", label: "Address Line 1", alias: "address1", typ: "text", isFixed: "1"},
	{id: 12, group: "core", label: "Address Line 2", alias: "address2", typ: "text", isFixed: "1"},
	{id: 13, group: "core", label: "City", alias: "city", typ: "text", isFixed: "1"},
	{id: 14, group: "core", label: "State", alias: "state", typ: "region", isFixed: "1"},
	{id: 15, group: "core", label: "Zip Code", alias: "zipcode", typ: "text", isFixed: "1"},
	{id: 16, group: "core", label: "Country", alias: "country", typ: "country", isFixed: "1"},
	{id: 17, group: "core", label: "Preferred Locale", alias: "preferred_locale", typ: "locale", isFixed: "1"},
	{id: 18, group: "core", label: "Preferred Timezone", alias: "timezone", typ: "timezone", isFixed: "1"},
	{id: 19, group: "core", label: "Date Last Active", alias: "last_active", typ: "datetime", isFixed: "1"},
	{id: 20, group: "core", label: "Attribution Date", alias: "attribution_date", typ: "datetime", isFixed: "1"},
	{id: 21, group: "core", label: "Attribution", alias: "attribution", typ: "number", propsNew: `{"roundmode":4,"scale":2}`, propsLoaded: `a:2:{s:9:"roundmode";i:4;s:5:"scale";i:2;}`, isFixed: "1"},
	{id: 22, group: "core", label: "Website", alias: "website", typ: "url", isFixed: "0"},
	{id: 23, group: "social", label: "Facebook", alias: "facebook", typ: "text", isFixed: "0"},
	{id: 24, group: "social", label: "Foursquare", alias: "foursquare", typ: "text", isFixed: "0"},
	{id: 25, group: "social", label: "Instagram", alias: "instagram", typ: "text", isFixed: "0"},
	{id: 26, group: "social", label: "mautic.lead.field.linkedin", alias: "linkedin", typ: "text", isFixed: "0"},
	{id: 27, group: "social", label: "Skype", alias: "skype", typ: "text", isFixed: "0"},
	{id: 28, group: "social", label: "Twitter", alias: "twitter", typ: "text", isFixed: "0"},
}

// numCore is how many of fieldDefs belong to the "core" group.
const numCore = 22

// fieldByAlias maps an alias to its index in fieldDefs.
var fieldByAlias = map[string]int{}

// writable reports the fields a request body may set as plain text. Points,
// last_active (set through lastActive), attribution and attribution_date are
// not among them.
var writable [numFields]bool

// identifying lists the fields whose value makes a contact "identified"
// (not anonymous): names, company, email and the social profiles.
var identifying = []int{fFirstname, fLastname, fCompany, fEmail, fFacebook, fFoursquare, fInstagram, fLinkedin, fSkype, fTwitter}

func init() {
	for i := range fieldDefs {
		fd := &fieldDefs[i]
		if fd.propsNew == "" {
			fd.propsNew = "[]"
		}
		if fd.propsLoaded == "" {
			fd.propsLoaded = "a:0:{}"
		}
		if fd.defaultVal == "" {
			fd.defaultVal = "null"
		}
		fieldByAlias[fd.alias] = i
		writable[i] = true

		var b []byte
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, int64(fd.id), 10)
		b = append(b, `,"group":`...)
		b = appendJSONString(b, fd.group)
		b = append(b, `,"label":`...)
		b = appendJSONString(b, fd.label)
		b = append(b, `,"alias":`...)
		b = appendJSONString(b, fd.alias)
		b = append(b, `,"type":`...)
		b = appendJSONString(b, fd.typ)
		b = append(b, `,"properties":`...)
		b = append(b, fd.propsNew...)
		b = append(b, `,"value":`...)
		fd.newPrefix = b

		b = nil
		b = append(b, `{"id":`...)
		b = appendJSONString(b, strconv.Itoa(fd.id))
		b = append(b, `,"label":`...)
		b = appendJSONString(b, fd.label)
		b = append(b, `,"alias":`...)
		b = appendJSONString(b, fd.alias)
		b = append(b, `,"type":`...)
		b = appendJSONString(b, fd.typ)
		b = append(b, `,"group":`...)
		b = appendJSONString(b, fd.group)
		b = append(b, `,"object":"lead","is_fixed":`...)
		b = appendJSONString(b, fd.isFixed)
		b = append(b, `,"properties":`...)
		b = appendJSONString(b, fd.propsLoaded)
		b = append(b, `,"default_value":`...)
		b = append(b, fd.defaultVal...)
		b = append(b, `,"value":`...)
		fd.loadedPrefix = b
	}
	for _, i := range []int{fPoints, fLastActive, fAttribution, fAttributionDate} {
		writable[i] = false
	}
}
