package mautic

import (
	"errors"
	"regexp"
	"sort"
	"strings"
)

var (
	// validationMessage is Mautic's form error, "<alias>: <value> <why>",
	// e.g. "email: ana@x is invalid.".
	validationMessage = regexp.MustCompile(`^([A-Za-z0-9_]+): `)
	// emailLike matches an e-mail address, also one whose local part
	// Mautic stripped away ("@example.org").
	emailLike = regexp.MustCompile(`[^\s@"'<>,;()]*@[^\s@"'<>,;()]+`)
	// phoneLike matches a phone as ej-mautic sends it (E.164) and long
	// digit runs.
	phoneLike = regexp.MustCompile(`\+\d{7,15}|\b\d{10,}\b`)
)

// Redact returns err's text without the personal data Mautic echoes back.
// Mautic's validation messages repeat the value refused ("email:
// joao@example.org is invalid.", with details {"email": […]}): an APIError
// carrying one is described by the names of the fields refused instead
// ("field email refused as invalid"). In the rest of the text, wrapped
// errors included, e-mail addresses and phone numbers are masked. Use it
// for whatever leaves the process or is kept: a connection's last error,
// dead-letter reasons, logs and metrics. "" for a nil error.
func Redact(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	var ae *APIError
	if errors.As(err, &ae) && ae != nil {
		if fields := refusedFields(ae); len(fields) > 0 {
			safe := *ae
			safe.Message = "field " + strings.Join(fields, ", ") + " refused as invalid"
			if len(fields) > 1 {
				safe.Message = "fields " + strings.Join(fields, ", ") + " refused as invalid"
			}
			s = strings.Replace(s, ae.Error(), safe.Error(), 1)
		}
	}
	s = emailLike.ReplaceAllString(s, "<email>")
	return phoneLike.ReplaceAllString(s, "<phone>")
}

// refusedFields lists the fields a validation error names: the keys of its
// details, or the alias its message starts with.
func refusedFields(ae *APIError) []string {
	if len(ae.Details) > 0 {
		fields := make([]string, 0, len(ae.Details))
		for k := range ae.Details {
			fields = append(fields, k)
		}
		sort.Strings(fields)
		return fields
	}
	if ae.Status >= 400 && ae.Status < 500 {
		if m := validationMessage.FindStringSubmatch(ae.Message); m != nil {
			return []string{m[1]}
		}
	}
	return nil
}
