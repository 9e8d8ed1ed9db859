package votes

import (
	"errors"
	"strconv"
	"strings"
)

// DecodeError describes why a message body, or one vote in it, was refused.
// Every DecodeError is permanent: the same body can never decode.
type DecodeError struct {
	// Index is the vote's position in the body: its zero-based index in an
	// array (InArray), 0 for a body that is a single vote, -1 when the body
	// as a whole is at fault.
	Index int
	// InArray is true when the body is an array and Index the vote's place
	// in it.
	InArray bool
	// Field is the offending field ("choice", "participant.id"), or empty.
	Field string
	// Reason says what is wrong, without the offending value.
	Reason string
}

// Error returns, for example, "vote 2: participant.id: is required" for the
// third vote of an array, "participant.id: is required" for a body that is
// a single vote, or "vote message: body is empty". The vote is named by its
// index only in an array, so that a caller that decodes votes one by one
// and names them by its own index says the index once.
func (e *DecodeError) Error() string {
	var b strings.Builder
	switch {
	case e.Index < 0:
		b.WriteString("vote message: ")
	case e.InArray:
		b.WriteString("vote ")
		b.WriteString(strconv.Itoa(e.Index))
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// IsPermanent reports whether err (or an error it wraps) is a decode error.
// Every decode error is permanent, malformed or of an unknown version: the
// consumer should send the message to the dead-letter queue, with
// err.Error() as the reason, rather than retry it.
func IsPermanent(err error) bool {
	var de *DecodeError
	return errors.As(err, &de)
}

func bodyError(reason string) *DecodeError {
	return &DecodeError{Index: -1, Reason: reason}
}

// Why a vote is refused. None holds the offending value.
const (
	reasonRequired  = "is required"
	reasonInteger   = "must be an integer"
	reasonID        = "must be a string or a whole number"
	reasonEmpty     = "must not be empty"
	reasonControl   = "must not contain control characters"
	reasonTooLongID = "must be at most 64 characters"
	reasonNegative  = "must not be negative"
	reasonChoice    = `must be "agree", "disagree" or "skip" (or 1, -1, 0)`
	reasonTime      = "must be an RFC 3339 date-time with a time zone, like 2026-11-26T12:00:00Z"
	reasonTimeRange = "must be in the years 2000 to 2100"
	reasonUTF8      = "must be valid UTF-8 text (no invalid bytes or lone surrogate escapes)"
	reasonOffset    = "must have a time zone offset from -23:59 to +23:59 (hours below 24, minutes below 60)"
	reasonComma     = "must separate fractional seconds with '.', not ',' (RFC 3339)"
	reasonString    = "must be a string"
)
