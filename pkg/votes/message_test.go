package votes_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	phonepkg "github.com/ejplatform/ej-mautic/pkg/phone"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

const schemaPath = "../../docs/vote.schema.json"

// message returns the example message of docs/ej-integration.md as a map, after edit (which
// may be nil) changes it; p is the participant object.
func message(edit func(m, p map[string]any)) map[string]any {
	p := map[string]any{"id": "1001", "phone": "61999998888", "email": "ana@example.org", "name": "Ana", "mautic_id": 5531}
	m := map[string]any{
		"version":         1,
		"vote_id":         "981234",
		"conversation_id": "42",
		"comment_id":      "7",
		"choice":          "agree",
		"channel":         "telegram",
		"voted_at":        "2026-11-26T12:00:00Z",
		"participant":     p,
	}
	if edit != nil {
		edit(m, p)
	}
	return m
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// body is the example message after edit, as JSON.
func body(t testing.TB, edit func(m, p map[string]any)) []byte {
	return mustJSON(t, message(edit))
}

// exampleVote is what Decode makes of the unedited example message.
func exampleVote() votes.Vote {
	return votes.Vote{
		Version:        1,
		VoteID:         "981234",
		ConversationID: "42",
		CommentID:      "7",
		Choice:         votes.ChoiceAgree,
		Channel:        "telegram",
		VotedAt:        time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
		Participant: votes.Participant{
			ID: "1001", Phone: "61999998888", Email: "ana@example.org", Name: "Ana", MauticID: 5531,
		},
	}
}

// sameVote reports whether got and want are equal, times compared as instants.
func sameVote(got, want votes.Vote) bool {
	if !got.VotedAt.Equal(want.VotedAt) {
		return false
	}
	got.VotedAt, want.VotedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(got, want)
}

func TestDecodeValid(t *testing.T) {
	vote := func(edit func(v *votes.Vote)) votes.Vote {
		v := exampleVote()
		if edit != nil {
			edit(&v)
		}
		return v
	}
	tests := []struct {
		name string
		body []byte
		want []votes.Vote
	}{
		{"design example", body(t, nil), []votes.Vote{vote(nil)}},
		{
			"numeric ids and integer choice",
			body(t, func(m, p map[string]any) {
				m["vote_id"], m["conversation_id"], m["comment_id"], m["choice"] = 981234, 42, 7, -1
				p["id"] = 1001
			}),
			[]votes.Vote{vote(func(v *votes.Vote) { v.Choice = votes.ChoiceDisagree })},
		},
		{
			"whole numbers in any JSON form",
			body(t, func(m, p map[string]any) {
				m["version"] = json.Number("1.0")
				m["vote_id"] = json.Number("9.81234e5")
				m["conversation_id"] = json.Number("4200E-2")
				m["comment_id"] = json.Number("7.000")
				p["id"] = json.Number("1001e0")
				p["mautic_id"] = json.Number("5.531e+3")
			}),
			[]votes.Vote{vote(nil)},
		},
		{
			"zero and big ids",
			body(t, func(m, p map[string]any) {
				m["vote_id"] = 0
				m["comment_id"] = json.Number("1" + strings.Repeat("0", 63))
			}),
			[]votes.Vote{vote(func(v *votes.Vote) { v.VoteID, v.CommentID = "0", "1"+strings.Repeat("0", 63) })},
		},
		{
			"string ids trimmed and kept verbatim",
			body(t, func(m, p map[string]any) {
				m["vote_id"], m["conversation_id"], m["comment_id"] = " 981234\t", "\nconv_A-1 ", "007"
				p["id"] = "participante/ção"
			}),
			[]votes.Vote{vote(func(v *votes.Vote) {
				v.ConversationID, v.CommentID, v.Participant.ID = "conv_A-1", "007", "participante/ção"
			})},
		},
		{
			"escaped strings",
			[]byte(`{"version":1,"vote_id":"98123\u0034","conversation_id":"4\u0032","comment_id":"7",` +
				`"choice":"\u0061gree","channel":"tele\/gram","voted_at":"2026-11-26T12:00:00Z",` +
				`"participant":{"id":"1001","name":"Jo\u00e3o \"J\""}}`),
			[]votes.Vote{vote(func(v *votes.Vote) {
				v.Channel = "tele/gram"
				v.Participant = votes.Participant{ID: "1001", Name: `João "J"`}
			})},
		},
		{
			"only the required fields",
			body(t, func(m, p map[string]any) {
				delete(m, "channel")
				for k := range p {
					if k != "id" {
						delete(p, k)
					}
				}
			}),
			[]votes.Vote{vote(func(v *votes.Vote) { v.Channel, v.Participant = "", votes.Participant{ID: "1001"} })},
		},
		{
			"optional fields null",
			body(t, func(m, p map[string]any) {
				m["channel"], p["phone"], p["email"], p["name"], p["mautic_id"] = nil, nil, nil, nil, nil
			}),
			[]votes.Vote{vote(func(v *votes.Vote) { v.Channel, v.Participant = "", votes.Participant{ID: "1001"} })},
		},
		{
			"unknown fields ignored at every level",
			body(t, func(m, p map[string]any) {
				m["source"] = map[string]any{"bot": "telegram", "ids": []any{1, 2, nil}}
				m["tags"] = []string{"x"}
				m["version_note"] = true
				p["telegram"] = map[string]any{"username": "ana"}
				p["score"] = 3.5
			}),
			[]votes.Vote{vote(nil)},
		},
		{
			"mautic_id as string",
			body(t, func(m, p map[string]any) { p["mautic_id"] = " 5531 " }),
			[]votes.Vote{vote(nil)},
		},
		{
			"mautic_id empty means none",
			mustJSON(t, []any{
				message(func(m, p map[string]any) { p["mautic_id"] = "" }),
				message(func(m, p map[string]any) { p["mautic_id"] = " " }),
			}),
			[]votes.Vote{
				vote(func(v *votes.Vote) { v.Participant.MauticID = 0 }),
				vote(func(v *votes.Vote) { v.Participant.MauticID = 0 }),
			},
		},
		{
			"phone as a JSON number",
			body(t, func(m, p map[string]any) { p["phone"] = 61999998888 }),
			[]votes.Vote{vote(nil)},
		},
		{
			// JSON Schema reads a number by its value, and so does Decode.
			"phone as a whole number in another form",
			body(t, func(m, p map[string]any) { p["phone"] = json.Number("6.1999998888e10") }),
			[]votes.Vote{vote(nil)},
		},
		{
			"phone kept raw",
			body(t, func(m, p map[string]any) { p["phone"] = " +55 (61) 99999-8888 " }),
			[]votes.Vote{vote(func(v *votes.Vote) { v.Participant.Phone = "+55 (61) 99999-8888" })},
		},
		{
			"email domain lower-cased, local part kept",
			body(t, func(m, p map[string]any) { p["email"] = " Ana.Silva+EJ@Example.ORG " }),
			[]votes.Vote{vote(func(v *votes.Vote) { v.Participant.Email = "Ana.Silva+EJ@example.org" })},
		},
		{
			"empty email means none",
			body(t, func(m, p map[string]any) { p["email"] = "  " }),
			[]votes.Vote{vote(func(v *votes.Vote) { v.Participant.Email = "" })},
		},
		{
			"name trimmed",
			body(t, func(m, p map[string]any) { p["name"] = "  Ana Conceição 🌱 " }),
			[]votes.Vote{vote(func(v *votes.Vote) { v.Participant.Name = "Ana Conceição 🌱" })},
		},
		{
			"voted_at with an offset and fraction",
			body(t, func(m, p map[string]any) { m["voted_at"] = "2026-11-26T09:00:00.5-03:00" }),
			[]votes.Vote{vote(func(v *votes.Vote) { v.VotedAt = time.Date(2026, 11, 26, 12, 0, 0, 5e8, time.UTC) })},
		},
		{
			"voted_at years 2000 and 2100 as written",
			mustJSON(t, []any{
				message(func(m, p map[string]any) { m["voted_at"] = "2000-01-01T00:30:00+01:00" }),
				message(func(m, p map[string]any) { m["voted_at"] = "2100-12-31T23:00:00-05:00" }),
			}),
			[]votes.Vote{
				vote(func(v *votes.Vote) { v.VotedAt = time.Date(1999, 12, 31, 23, 30, 0, 0, time.UTC) }),
				vote(func(v *votes.Vote) { v.VotedAt = time.Date(2101, 1, 1, 4, 0, 0, 0, time.UTC) }),
			},
		},
		{
			"array of votes in order",
			mustJSON(t, []any{
				message(func(m, p map[string]any) { m["vote_id"] = "1" }),
				message(func(m, p map[string]any) { m["vote_id"] = "2"; m["choice"] = "skip" }),
				message(func(m, p map[string]any) { m["vote_id"] = 3; m["choice"] = 0 }),
			}),
			[]votes.Vote{
				vote(func(v *votes.Vote) { v.VoteID = "1" }),
				vote(func(v *votes.Vote) { v.VoteID, v.Choice = "2", votes.ChoiceSkip }),
				vote(func(v *votes.Vote) { v.VoteID, v.Choice = "3", votes.ChoiceSkip }),
			},
		},
		{
			"array of one",
			[]byte("[" + string(body(t, nil)) + "]"),
			[]votes.Vote{vote(nil)},
		},
		{
			"white space around the body",
			[]byte("\n\t " + string(body(t, nil)) + " \r\n"),
			[]votes.Vote{vote(nil)},
		},
		{
			"keys match exactly; escaped keys count",
			[]byte(`{"version":1,"vote\u005fid":"981234","conversation_id":"42","comment_id":"7","Choice":"skip",` +
				`"choice":"agree","CHOICE":"skip","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"1001","ID":"x"}}`),
			[]votes.Vote{vote(func(v *votes.Vote) { v.Channel, v.Participant = "", votes.Participant{ID: "1001"} })},
		},
		{
			"duplicate key: the last one wins",
			[]byte(`{"version":1,"vote_id":"1","vote_id":"981234","conversation_id":"42","comment_id":"7",` +
				`"choice":"skip","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"1001"}}`),
			[]votes.Vote{vote(func(v *votes.Vote) { v.Channel, v.Participant = "", votes.Participant{ID: "1001"} })},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := votes.Decode(tt.body)
			if err != nil {
				t.Fatalf("Decode(%s) error: %v", tt.body, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Decode got %d votes, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				if !sameVote(got[i], tt.want[i]) {
					t.Errorf("vote %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestDecodeChoices(t *testing.T) {
	tests := []struct {
		choice any
		want   votes.Choice
	}{
		{"agree", votes.ChoiceAgree},
		{"disagree", votes.ChoiceDisagree},
		{"skip", votes.ChoiceSkip},
		{"AGREE", votes.ChoiceAgree},
		{" Disagree ", votes.ChoiceDisagree},
		{"Skip", votes.ChoiceSkip},
		{"1", votes.ChoiceAgree},
		{"-1", votes.ChoiceDisagree},
		{"0", votes.ChoiceSkip},
		{1, votes.ChoiceAgree},
		{-1, votes.ChoiceDisagree},
		{0, votes.ChoiceSkip},
		{json.Number("1.0"), votes.ChoiceAgree},
		{json.Number("-1e0"), votes.ChoiceDisagree},
		{json.Number("-0"), votes.ChoiceSkip},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%T %v", tt.choice, tt.choice), func(t *testing.T) {
			got, err := votes.Decode(body(t, func(m, p map[string]any) { m["choice"] = tt.choice }))
			if err != nil {
				t.Fatal(err)
			}
			if got[0].Choice != tt.want {
				t.Errorf("choice %#v: got %v, want %v", tt.choice, got[0].Choice, tt.want)
			}
		})
	}
}

// TestDecodeInvalidVote checks each way a single vote is refused: the exact
// message, the fields of the *DecodeError, and that it is permanent.
func TestDecodeInvalidVote(t *testing.T) {
	type edit = func(m, p map[string]any)
	set := func(key string, v any) edit { return func(m, p map[string]any) { m[key] = v } }
	setP := func(key string, v any) edit { return func(m, p map[string]any) { p[key] = v } }
	del := func(key string) edit { return func(m, p map[string]any) { delete(m, key) } }
	const (
		reasonID     = "must be a string or a whole number"
		reasonChoice = `must be "agree", "disagree" or "skip" (or 1, -1, 0)`
		reasonTime   = "must be an RFC 3339 date-time with a time zone, like 2026-11-26T12:00:00Z"
		reasonOffset = "must have a time zone offset from -23:59 to +23:59 (hours below 24, minutes below 60)"
		reasonComma  = "must separate fractional seconds with '.', not ',' (RFC 3339)"
	)
	tests := []struct {
		name   string
		edit   edit
		field  string
		reason string
	}{
		{"version missing", del("version"), "version", "is required"},
		{"vote_id missing", del("vote_id"), "vote_id", "is required"},
		{"conversation_id missing", del("conversation_id"), "conversation_id", "is required"},
		{"comment_id missing", del("comment_id"), "comment_id", "is required"},
		{"choice missing", del("choice"), "choice", "is required"},
		{"voted_at missing", del("voted_at"), "voted_at", "is required"},
		{"participant missing", del("participant"), "participant", "is required"},
		{"participant.id missing", func(m, p map[string]any) { delete(p, "id") }, "participant.id", "is required"},
		{"vote_id null", set("vote_id", nil), "vote_id", "is required"},
		{"participant null", set("participant", nil), "participant", "is required"},
		{"participant.id null", setP("id", nil), "participant.id", "is required"},
		{"key in another case", func(m, p map[string]any) { m["Vote_ID"] = m["vote_id"]; delete(m, "vote_id") }, "vote_id", "is required"},

		{"version 2", set("version", 2), "version", "unsupported message version 2 (this consumer understands 1)"},
		{"version 2.0", set("version", json.Number("2.0")), "version", "unsupported message version 2 (this consumer understands 1)"},
		{"version 1e100", set("version", json.Number("1e100")), "version", "unsupported message version, a number of more than 4 digits (this consumer understands 1)"},
		{"version 9999", set("version", 9999), "version", "unsupported message version 9999 (this consumer understands 1)"},
		{"version 61999998888", set("version", 61999998888), "version", "unsupported message version, a number of more than 4 digits (this consumer understands 1)"},
		{"version 0", set("version", 0), "version", "must be a positive integer"},
		{"version -1", set("version", -1), "version", "must be a positive integer"},
		{"version 1.5", set("version", 1.5), "version", "must be an integer"},
		{"version string", set("version", "1"), "version", "must be an integer"},
		{"version bool", set("version", true), "version", "must be an integer"},

		{"vote_id bool", set("vote_id", true), "vote_id", reasonID},
		{"vote_id object", set("vote_id", map[string]any{"id": 1}), "vote_id", reasonID},
		{"vote_id array", set("vote_id", []int{1}), "vote_id", reasonID},
		{"vote_id fraction", set("vote_id", 1.5), "vote_id", reasonID},
		{"vote_id tiny fraction", set("vote_id", json.Number("1e-400")), "vote_id", reasonID},
		{"vote_id negative", set("vote_id", -7), "vote_id", "must not be negative"},
		{"vote_id 65 digits", set("vote_id", json.Number("1e64")), "vote_id", "must be at most 64 characters"},
		{"vote_id huge exponent", set("vote_id", json.Number("1e999999999999")), "vote_id", "must be at most 64 characters"},
		{"vote_id empty", set("vote_id", ""), "vote_id", "must not be empty"},
		{"vote_id blank", set("vote_id", " \t\u00a0"), "vote_id", "must not be empty"},
		{"vote_id 65 characters", set("vote_id", strings.Repeat("ç", 65)), "vote_id", "must be at most 64 characters"},
		{"vote_id control character", set("vote_id", "98\u00001"), "vote_id", "must not contain control characters"},
		{"comment_id C1 control", set("comment_id", "7\u0085x"), "comment_id", "must not contain control characters"},
		{"conversation_id slash", set("conversation_id", "a/b"), "conversation_id", "must be 1-64 letters, digits, '_' or '-'"},
		{"conversation_id non-ASCII", set("conversation_id", "conversação"), "conversation_id", "must be 1-64 letters, digits, '_' or '-'"},
		{"conversation_id inner space", set("conversation_id", "4 2"), "conversation_id", "must be 1-64 letters, digits, '_' or '-'"},
		{"conversation_id negative", set("conversation_id", -42), "conversation_id", "must not be negative"},
		{"participant.id fraction", setP("id", 10.01), "participant.id", reasonID},

		{"choice unknown", set("choice", "maybe"), "choice", reasonChoice},
		{"choice empty", set("choice", ""), "choice", reasonChoice},
		{"choice 2", set("choice", 2), "choice", reasonChoice},
		{"choice 0.5", set("choice", 0.5), "choice", reasonChoice},
		{"choice +1 string", set("choice", "+1"), "choice", reasonChoice},
		{"choice bool", set("choice", true), "choice", reasonChoice},

		{"voted_at without zone", set("voted_at", "2026-11-26T12:00:00"), "voted_at", reasonTime},
		{"voted_at date only", set("voted_at", "2026-11-26"), "voted_at", reasonTime},
		{"voted_at with a space", set("voted_at", "2026-11-26 12:00:00Z"), "voted_at", reasonTime},
		{"voted_at day out of range", set("voted_at", "2026-02-30T12:00:00Z"), "voted_at", reasonTime},
		{"voted_at epoch number", set("voted_at", 1764158400), "voted_at", reasonTime},
		{"voted_at 1999", set("voted_at", "1999-12-31T23:59:59Z"), "voted_at", "must be in the years 2000 to 2100"},
		{"voted_at 2101", set("voted_at", "2101-01-01T00:00:00Z"), "voted_at", "must be in the years 2000 to 2100"},
		// time.Parse accepts these offsets, but Time.MarshalJSON cannot
		// write +24:00 back, and +01:60 comes back as +02:00.
		{"voted_at offset +24:00", set("voted_at", "2026-11-26T12:00:00+24:00"), "voted_at", reasonOffset},
		{"voted_at offset -24:00", set("voted_at", "2026-11-26T12:00:00-24:00"), "voted_at", reasonOffset},
		{"voted_at offset +01:60", set("voted_at", "2026-11-26T12:00:00+01:60"), "voted_at", reasonOffset},
		{"voted_at offset +23:60", set("voted_at", "2026-11-26T12:00:00+23:60"), "voted_at", reasonOffset},
		{"voted_at offset +99:00", set("voted_at", "2026-11-26T12:00:00+99:00"), "voted_at", reasonOffset},
		{"voted_at comma fraction", set("voted_at", "2026-11-26T12:00:00,5Z"), "voted_at", reasonComma},
		{"voted_at comma fraction with offset", set("voted_at", "2026-11-26T09:00:00,123-03:00"), "voted_at", reasonComma},
		{"voted_at offset without colon", set("voted_at", "2026-11-26T12:00:00+0100"), "voted_at", reasonTime},
		{"voted_at lower-case t", set("voted_at", "2026-11-26t12:00:00Z"), "voted_at", reasonTime},
		{"voted_at empty fraction", set("voted_at", "2026-11-26T12:00:00.Z"), "voted_at", reasonTime},
		{"voted_at hour 24", set("voted_at", "2026-11-26T24:00:00Z"), "voted_at", reasonTime},
		{"voted_at leap second", set("voted_at", "2026-12-31T23:59:60Z"), "voted_at", reasonTime},

		{"channel number", set("channel", 42), "channel", "must be a string"},
		{"channel too long", set("channel", strings.Repeat("x", 65)), "channel", "must be at most 64 characters"},
		{"channel control character", set("channel", "tele\ngram"), "channel", "must not contain control characters"},
		{"participant string", set("participant", "1001"), "participant", "must be an object"},
		{"participant array", set("participant", []any{map[string]any{"id": "1"}}), "participant", "must be an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := body(t, tt.edit)
			got, err := votes.Decode(b)
			if err == nil {
				t.Fatalf("Decode(%s) = %+v, want an error", b, got)
			}
			if got != nil {
				t.Errorf("Decode returned votes %+v with the error, want none", got)
			}
			want := &votes.DecodeError{Index: 0, Field: tt.field, Reason: tt.reason}
			var de *votes.DecodeError
			if !errors.As(err, &de) || *de != *want {
				t.Errorf("Decode error = %#v, want %#v", err, want)
			}
			if wantMsg := tt.field + ": " + tt.reason; err.Error() != wantMsg {
				t.Errorf("Decode error message\n got %q\nwant %q", err.Error(), wantMsg)
			}
			if !votes.IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = false, want true", err)
			}
			// The same vote inside an array fails the same way, with its index.
			arr := []byte("[" + string(body(t, nil)) + "," + string(b) + "]")
			got, err = votes.Decode(arr)
			if len(got) != 1 {
				t.Errorf("in an array: got %d votes, want the 1 valid one", len(got))
			}
			if want := "vote 1: " + tt.field + ": " + tt.reason; err == nil || err.Error() != want {
				t.Errorf("in an array: error %v, want %q", err, want)
			}
		})
	}
}

func TestDecodeInvalidBody(t *testing.T) {
	valid := body(t, nil)
	// atLimit is a valid body of exactly MaxBodySize bytes.
	atLimit := append(bytes.Repeat([]byte(" "), votes.MaxBodySize-len(valid)), valid...)
	// over is an array of valid votes just over the limit.
	var manyVotes []any
	for i := range votes.MaxBodySize/len(valid) + 1 {
		manyVotes = append(manyVotes, message(func(m, p map[string]any) { m["vote_id"] = fmt.Sprintf("%06d", i) }))
	}
	over := mustJSON(t, manyVotes)
	if len(over) <= votes.MaxBodySize {
		t.Fatalf("test array is only %d bytes", len(over))
	}

	t.Run("body of exactly MaxBodySize", func(t *testing.T) {
		if len(atLimit) != votes.MaxBodySize {
			t.Fatalf("test body is %d bytes", len(atLimit))
		}
		if _, err := votes.Decode(atLimit); err != nil {
			t.Errorf("Decode at the limit: %v", err)
		}
	})

	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"nil", nil, "vote message: body is empty"},
		{"blank", []byte(" \n\t"), "vote message: body is empty"},
		{"over 256 KiB", append(atLimit, ' '), "vote message: body is 262145 bytes, more than the 262144-byte (256 KiB) SQS limit"},
		{"array over 256 KiB", over, fmt.Sprintf("vote message: body is %d bytes, more than the 262144-byte (256 KiB) SQS limit", len(over))},
		{"empty array", []byte("[]"), "vote message: body is an empty array; send at least one vote"},
		{"empty array with space", []byte(" [ \n ] "), "vote message: body is an empty array; send at least one vote"},
		{"null", []byte("null"), "vote message: body must be a vote object or a non-empty array of them"},
		{"string", []byte(`"vote"`), "vote message: body must be a vote object or a non-empty array of them"},
		{"number", []byte(`42`), "vote message: body must be a vote object or a non-empty array of them"},
		{"truncated object", valid[:len(valid)-1], "vote message: body is not valid JSON: unexpected end of JSON input"},
		{"trailing data", append(append([]byte{}, valid...), "{}"...), "vote message: body is not valid JSON: invalid character '{' after top-level value"},
		{"truncated array", []byte("[" + string(valid)), "vote message: body is not valid JSON: unexpected end of JSON input"},
		{"not JSON", []byte("vote_id=1"), "vote message: body is not valid JSON: invalid character 'v' looking for beginning of value"},
		{"byte order mark", append([]byte("\xef\xbb\xbf"), valid...), "vote message: body is not valid JSON: invalid character 'ï' looking for beginning of value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := votes.Decode(tt.body)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Decode error = %v, want %q", err, tt.want)
			}
			if got != nil {
				t.Errorf("Decode returned %d votes with a body error, want none", len(got))
			}
			var de *votes.DecodeError
			if !errors.As(err, &de) || de.Index != -1 {
				t.Errorf("error %#v: want a *DecodeError with Index -1", err)
			}
			if !votes.IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = false, want true", err)
			}
		})
	}
}

// TestDecodeArrayPartial checks that one bad vote does not take the valid
// votes of its array down with it, and how the error lists the bad ones.
func TestDecodeArrayPartial(t *testing.T) {
	good := func(id int) any { return message(func(m, p map[string]any) { m["vote_id"] = id }) }
	badChoice := message(func(m, p map[string]any) { m["choice"] = "maybe" })

	t.Run("valid votes kept, invalid ones listed", func(t *testing.T) {
		b := mustJSON(t, []any{good(1), 42, good(3), badChoice, nil, good(6)})
		got, err := votes.Decode(b)
		var ids []string
		for _, v := range got {
			ids = append(ids, v.VoteID)
		}
		if want := []string{"1", "3", "6"}; !reflect.DeepEqual(ids, want) {
			t.Errorf("got votes %q, want %q", ids, want)
		}
		want := "vote 1: must be a vote object\n" +
			`vote 3: choice: must be "agree", "disagree" or "skip" (or 1, -1, 0)` + "\n" +
			"vote 4: must be a vote object"
		if err == nil || err.Error() != want {
			t.Errorf("error\n got %v\nwant %s", err, want)
		}
		if !votes.IsPermanent(err) {
			t.Errorf("IsPermanent(%v) = false, want true", err)
		}
	})

	t.Run("more than ten invalid votes", func(t *testing.T) {
		arr := []any{good(0)}
		for range 13 {
			arr = append(arr, "not a vote")
		}
		got, err := votes.Decode(mustJSON(t, arr))
		if len(got) != 1 {
			t.Errorf("got %d votes, want 1", len(got))
		}
		if err == nil {
			t.Fatal("no error")
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != 11 || lines[0] != "vote 1: must be a vote object" || lines[9] != "vote 10: must be a vote object" ||
			lines[10] != "vote message: 3 more invalid votes not listed" {
			t.Errorf("error lines = %q, want votes 1-10 listed and 3 more counted", lines)
		}
	})

	t.Run("every vote invalid", func(t *testing.T) {
		got, err := votes.Decode([]byte(`[1, 2]`))
		if len(got) != 0 || err == nil || !votes.IsPermanent(err) {
			t.Errorf("Decode = %v, %v; want no votes and a permanent error", got, err)
		}
	})
}

// TestDecodeWarnings checks that bad contact details are dropped with a
// warning, never refusing the vote.
func TestDecodeWarnings(t *testing.T) {
	const (
		emailWarning       = "participant.email: not a plain ASCII address like ana@example.org; ignored"
		phoneNumberWarning = "participant.phone: a number must be whole, from 0 to 999999999999999 (15 digits); ignored"
	)
	long := strings.Repeat("ã", 254) + " b" // 256 runes
	tests := []struct {
		name         string
		set          map[string]any // participant fields
		want         votes.Participant
		wantWarnings []string
	}{
		{"email without @", map[string]any{"email": "ana.example.org"}, votes.Participant{}, []string{emailWarning}},
		{"email with display name", map[string]any{"email": "Ana <ana@example.org>"}, votes.Participant{}, []string{emailWarning}},
		{"email in angle brackets", map[string]any{"email": "<ana@example.org>"}, votes.Participant{}, []string{emailWarning}},
		{"email with a comment", map[string]any{"email": "ana@example.org (Ana)"}, votes.Participant{}, []string{emailWarning}},
		{"email domain without a dot", map[string]any{"email": "ana@localhost"}, votes.Participant{}, []string{emailWarning}},
		{"email domain ending in a dot", map[string]any{"email": "ana@example.org."}, votes.Participant{}, []string{emailWarning}},
		{"two emails", map[string]any{"email": "ana@example.org, bia@example.org"}, votes.Participant{}, []string{emailWarning}},
		{"email over 254 bytes", map[string]any{"email": strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".org"},
			votes.Participant{}, []string{emailWarning}},
		{"phone over 64 characters", map[string]any{"phone": strings.Repeat("9", 65)},
			votes.Participant{}, []string{"participant.phone: longer than 64 characters; ignored"}},
		{"phone number with a fraction", map[string]any{"phone": 619999.5},
			votes.Participant{}, []string{phoneNumberWarning}},
		{"phone negative number", map[string]any{"phone": -61999998888},
			votes.Participant{}, []string{phoneNumberWarning}},
		{"phone of 15 digits as a number", map[string]any{"phone": 999999999999999},
			votes.Participant{Phone: "999999999999999"}, nil},
		{"phone number over 15 digits", map[string]any{"phone": 1000000000000000},
			votes.Participant{}, []string{phoneNumberWarning}},
		{"phone number 1e309", map[string]any{"phone": json.Number("1e309")},
			votes.Participant{}, []string{phoneNumberWarning}},
		{"phone number -1", map[string]any{"phone": -1},
			votes.Participant{}, []string{phoneNumberWarning}},
		{"phone number 1.5", map[string]any{"phone": 1.5},
			votes.Participant{}, []string{phoneNumberWarning}},
		{"phone with a control character", map[string]any{"phone": "61 99999\n8888"},
			votes.Participant{}, []string{"participant.phone: contains control characters; ignored"}},
		{"phone bool", map[string]any{"phone": true},
			votes.Participant{}, []string{"participant.phone: not a string or a number; ignored"}},
		{"phone object", map[string]any{"phone": map[string]any{"number": "61999998888"}},
			votes.Participant{}, []string{"participant.phone: not a string or a number; ignored"}},
		{"email number", map[string]any{"email": 42},
			votes.Participant{}, []string{"participant.email: not a string; ignored"}},
		{"email array", map[string]any{"email": []string{"ana@example.org"}},
			votes.Participant{}, []string{"participant.email: not a string; ignored"}},
		{"name array", map[string]any{"name": []string{"Ana"}},
			votes.Participant{}, []string{"participant.name: not a string; ignored"}},
		{"name bool", map[string]any{"name": false},
			votes.Participant{}, []string{"participant.name: not a string; ignored"}},
		{"name with a newline", map[string]any{"name": "Ana\nBia"},
			votes.Participant{}, []string{"participant.name: contains control characters; ignored"}},
		{"name with a control character", map[string]any{"name": "Ana\x1b[31m"},
			votes.Participant{}, []string{"participant.name: contains control characters; ignored"}},
		{"name of 255 characters kept", map[string]any{"name": strings.Repeat("ã", 255)},
			votes.Participant{Name: strings.Repeat("ã", 255)}, nil},
		{"name over 255 characters cut", map[string]any{"name": long},
			votes.Participant{Name: strings.Repeat("ã", 254)}, []string{"participant.name: longer than 255 characters; cut"}},
		{"all three", map[string]any{"email": "x", "phone": strings.Repeat("1", 80), "name": "\x00"},
			votes.Participant{}, []string{
				"participant.phone: longer than 64 characters; ignored",
				emailWarning,
				"participant.name: contains control characters; ignored",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := votes.Decode(body(t, func(m, p map[string]any) {
				// Keep only the fields under test, besides the id.
				p["phone"], p["email"], p["name"], p["mautic_id"] = nil, nil, nil, nil
				maps.Copy(p, tt.set)
			}))
			if err != nil {
				t.Fatalf("Decode error: %v (an invalid contact detail must not refuse the vote)", err)
			}
			want := tt.want
			want.ID = "1001"
			if got[0].Participant != want {
				t.Errorf("participant\n got %+v\nwant %+v", got[0].Participant, want)
			}
			if !reflect.DeepEqual(got[0].Warnings, tt.wantWarnings) {
				t.Errorf("warnings\n got %q\nwant %q", got[0].Warnings, tt.wantWarnings)
			}
		})
	}
}

// TestDecodeInvalidUTF8 checks strings that are not Unicode text: raw bytes
// that are not UTF-8, and escapes of lone UTF-16 surrogates ("\ud800"),
// which encoding/json would silently turn into U+FFFD. In a field that
// refuses a vote, they refuse it; in a contact field, the value is dropped
// with a warning; in a field Decode does not read, they are ignored.
func TestDecodeInvalidUTF8(t *testing.T) {
	const reason = "must be valid UTF-8 text (no invalid bytes or lone surrogate escapes)"
	example := string(body(t, nil))
	// edit replaces the JSON text old in the example message with new.
	edit := func(old, new string) []byte {
		if !strings.Contains(example, old) {
			t.Fatalf("%s is not in the example message", old)
		}
		return []byte(strings.Replace(example, old, new, 1))
	}
	refused := []struct {
		name, field string
		body        []byte
	}{
		{"vote_id raw byte", "vote_id", edit(`"981234"`, "\"98\xff1234\"")},
		{"vote_id truncated sequence", "vote_id", edit(`"981234"`, "\"981234\xc3\"")},
		{"vote_id lone high surrogate", "vote_id", edit(`"981234"`, `"98\ud8001234"`)},
		{"vote_id lone low surrogate", "vote_id", edit(`"981234"`, `"\udc00981234"`)},
		{"vote_id surrogates reversed", "vote_id", edit(`"981234"`, `"\ude00\ud83d"`)},
		{"comment_id surrogate-encoded in UTF-8", "comment_id", edit(`"comment_id":"7"`, "\"comment_id\":\"7\xed\xa0\x80\"")},
		{"participant.id raw byte", "participant.id", edit(`"id":"1001"`, "\"id\":\"10\xfe01\"")},
		{"channel raw byte", "channel", edit(`"telegram"`, "\"tele\xffgram\"")},
		{"choice lone surrogate", "choice", edit(`"agree"`, `"agree\udbff"`)},
		{"voted_at raw byte", "voted_at", edit(`"2026-11-26T12:00:00Z"`, "\"2026-11-26T12:00:00Z\x80\"")},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if unicodeText(tt.body) {
				t.Errorf("unicodeText(%q) = true", tt.body)
			}
			got, err := votes.Decode(tt.body)
			want := &votes.DecodeError{Index: 0, Field: tt.field, Reason: reason}
			var de *votes.DecodeError
			if len(got) != 0 || !errors.As(err, &de) || *de != *want {
				t.Errorf("Decode = %d votes, %#v; want %#v", len(got), err, want)
			}
		})
	}
	const warning = "not valid UTF-8 text (invalid bytes or lone surrogate escapes); ignored"
	dropped := []struct {
		name, field string
		body        []byte
	}{
		{"name raw byte", "name", edit(`"Ana"`, "\"Ana \xff\"")},
		{"name lone surrogate", "name", edit(`"Ana"`, `"Ana \ud83d"`)},
		{"email raw byte", "email", edit(`"ana@example.org"`, "\"ana\xff@example.org\"")},
		{"email lone surrogate in the domain", "email", edit(`"ana@example.org"`, `"ana@ex\udc00ample.org"`)},
		{"phone raw byte", "phone", edit(`"61999998888"`, "\"6199999\xc08888\"")},
		{"mautic_id lone surrogate", "mautic_id", edit(`"mautic_id":5531`, `"mautic_id":"5531\ud800"`)},
	}
	for _, tt := range dropped {
		t.Run(tt.name, func(t *testing.T) {
			if unicodeText(tt.body) {
				t.Errorf("unicodeText(%q) = true", tt.body)
			}
			got, err := votes.Decode(tt.body)
			if err != nil || len(got) != 1 {
				t.Fatalf("Decode = %d votes, %v; want the vote", len(got), err)
			}
			want := exampleVote()
			switch tt.field {
			case "name":
				want.Participant.Name = ""
			case "email":
				want.Participant.Email = ""
			case "phone":
				want.Participant.Phone = ""
			case "mautic_id":
				want.Participant.MauticID = 0
			}
			want.Warnings = []string{"participant." + tt.field + ": " + warning}
			if !sameVote(got[0], want) {
				t.Errorf("got  %+v\nwant %+v", got[0], want)
			}
		})
	}
	kept := []struct {
		name string
		body []byte
		edit func(v *votes.Vote)
	}{
		{"surrogate pair", edit(`"Ana"`, `"Ana \ud83c\udf31"`), func(v *votes.Vote) { v.Participant.Name = "Ana 🌱" }},
		{"U+FFFD itself", edit(`"Ana"`, "\"Ana \uFFFD \\ufffd\""), func(v *votes.Vote) { v.Participant.Name = "Ana \uFFFD \uFFFD" }},
		{"unknown field", edit(`"version":1`, "\"version\":1,\"note\":\"\xff\\ud800\""), nil},
		{"unknown participant field", edit(`"id":"1001"`, "\"id\":\"1001\",\"nick\":\"\\udc00\xfe\""), nil},
		{"unknown key", edit(`"version":1`, "\"version\":1,\"vote_id\xff\":\"x\",\"\\ud800\":1"), nil},
	}
	for i, tt := range kept {
		t.Run(tt.name, func(t *testing.T) {
			if unicodeText(tt.body) != (i < 2) {
				t.Errorf("unicodeText(%q) = %v", tt.body, !(i < 2))
			}
			got, err := votes.Decode(tt.body)
			if err != nil || len(got) != 1 {
				t.Fatalf("Decode = %d votes, %v; want the vote", len(got), err)
			}
			want := exampleVote()
			if tt.edit != nil {
				tt.edit(&want)
			}
			if !sameVote(got[0], want) {
				t.Errorf("got  %+v\nwant %+v", got[0], want)
			}
		})
	}
}

// TestDecodeEmail checks the one rule for participant.email, which the
// schema's pattern states too: Decode keeps a plain ASCII address that
// Mautic stores as is (a dot-atom local part of at most 64 bytes without
// Mautic's refused or stripped characters, '@', a host name of LDH labels
// with a dot whose last label starts with a letter, at most 254 bytes), with
// its domain lower-cased, or a Unicode domain in punycode. It drops anything
// else with a warning, never refusing the vote.
func TestDecodeEmail(t *testing.T) {
	const (
		plain    = "participant.email: not a plain ASCII address like ana@example.org; ignored"
		nonASCII = "participant.email: has non-ASCII characters before the @, which Mautic would strip; ignored"
		idnaFail = "participant.email: its domain has no ASCII (IDNA) form; ignored"
		ipDomain = "participant.email: its domain is an IP address, which Mautic refuses; ignored"
	)
	label63 := strings.Repeat("d", 63)
	tests := []struct {
		email   string
		want    string // the kept address, or "" when dropped
		warning string // the warning when dropped
	}{
		{"ana@example.org", "ana@example.org", ""},
		{"Ana.Silva+EJ@Example.ORG", "Ana.Silva+EJ@example.org", ""},
		{" ana@example.org\t", "ana@example.org", ""},
		{"a!#$'+=?_`{|}~-z@example.org", "a!#$'+=?_`{|}~-z@example.org", ""},
		{"a.b.c@sub-1.example.org", "a.b.c@sub-1.example.org", ""},
		{"1@1.x", "1@1.x", ""},
		{"ana@xn--mnchen-3ya.de", "ana@xn--mnchen-3ya.de", ""},
		{strings.Repeat("a", 64) + "@example.org", strings.Repeat("a", 64) + "@example.org", ""},
		{"a@" + label63 + ".org", "a@" + label63 + ".org", ""},
		// 254 bytes: "a@", 3 labels of 63 and their dots, 60 letters.
		{"a@" + label63 + "." + label63 + "." + label63 + "." + strings.Repeat("e", 60),
			"a@" + label63 + "." + label63 + "." + label63 + "." + strings.Repeat("e", 60), ""},

		// A Unicode domain is kept in punycode (what Mautic can store).
		{"ana@münchen.de", "ana@xn--mnchen-3ya.de", ""},
		{"ana@MÜNCHEN.DE", "ana@xn--mnchen-3ya.de", ""},
		{"ana@bücher.example", "ana@xn--bcher-kva.example", ""},
		{"ana@ｅｘａｍｐｌｅ.org", "ana@example.org", ""},
		{"ana@ü.org.", "", plain},
		{"ana@exä mple.org", "", idnaFail},
		{"ana@ü_x.org", "", idnaFail},
		{"ana@ü.-x.org", "", idnaFail},
		{"ana@ü." + strings.Repeat("e", 64), "", idnaFail},

		// Mautic strips non-ASCII characters: joão@… would be stored as
		// joo@…, another person's address.
		{"joão@example.com.br", "", nonASCII},
		{"ü@example.org", "", nonASCII},
		{"ｊｏａｏ@example.org", "", nonASCII},
		{"joão@açaí.com.br", "", nonASCII},

		// Mautic refuses IP literals and underscores in the domain.
		{"a@192.168.0.1", "", ipDomain},
		{"a@[1.2.3.4]", "", ipDomain},
		{"a@[IPv6:::1]", "", ipDomain},
		{"a@ex_ample.org", "", plain},
		// Mautic refuses ^ & * % and strips /.
		{"a%b@example.org", "", plain},
		{"a&b@example.org", "", plain},
		{"a*b@example.org", "", plain},
		{"a^b@example.org", "", plain},
		{"a/b@example.org", "", plain},

		// Not a plain addr-spec.
		{"a b@x.org", "", plain},
		{"Ana <a@x.org>", "", plain},
		{"<a@x.org>", "", plain},
		{`"a"@x.org`, "", plain},
		{`"a b"@x.org`, "", plain},
		{"a..b@x.org", "", plain},
		{".a@x.org", "", plain},
		{"a.@x.org", "", plain},
		{"a@x.org (Ana)", "", plain},
		{"a@x.org, b@y.org", "", plain},
		{"a@b@x.org", "", plain},
		{"@x.org", "", plain},
		{"a@", "", plain},
		{"a", "", plain},
		{"a\n@x.org", "", plain},
		{"a@x", "", plain},
		{"a@x.", "", plain},
		{"a@.x.org", "", plain},
		{"a@x..org", "", plain},
		{"a@-x.org", "", plain},
		{"a@x-.org", "", plain},
		{"a@x.1org", "", plain},
		{"a@x.o-", "", plain},
		{strings.Repeat("a", 65) + "@example.org", "", plain},
		{"a@" + strings.Repeat("d", 64) + ".org", "", plain},
		{"a@" + label63 + "." + label63 + "." + label63 + "." + strings.Repeat("e", 61), "", plain},
	}
	sch := compileSchema(t)
	for _, tt := range tests {
		t.Run(tt.email, func(t *testing.T) {
			b := body(t, func(m, p map[string]any) { p["email"] = tt.email })
			got, err := votes.Decode(b)
			if err != nil {
				t.Fatalf("Decode error: %v (an invalid email must not refuse the vote)", err)
			}
			want := exampleVote()
			want.Participant.Email = tt.want
			if tt.want == "" {
				want.Warnings = []string{tt.warning}
			}
			if !sameVote(got[0], want) {
				t.Errorf("got  %+v\nwant %+v", got[0], want)
			}
			// The schema accepts the address exactly when Decode keeps it
			// unconverted (white space aside), and accepts what Decode keeps.
			trimmed := strings.TrimSpace(tt.email)
			keptAsIs := tt.want != "" && strings.EqualFold(tt.want, trimmed)
			if err := validate(sch, body(t, func(m, p map[string]any) { p["email"] = trimmed })); (err == nil) != keptAsIs {
				t.Errorf("schema on %q: %v; want accepted %v", trimmed, err, keptAsIs)
			}
			if err := validate(sch, mustJSON(t, got[0])); err != nil {
				t.Errorf("schema refuses the decoded vote: %v", err)
			}
		})
	}
}

// TestDecodeMauticID checks participant.mautic_id: a positive integer of at
// most 2^53-1 without sign or leading zeros, as a JSON number or a string, is
// kept; anything else is dropped with a warning, never refusing the vote.
func TestDecodeMauticID(t *testing.T) {
	const warning = "participant.mautic_id: not a positive integer up to 9007199254740991 (2^53-1); ignored"
	tests := []struct {
		mauticID any
		want     int64 // 0: dropped with the warning
	}{
		{5531, 5531},
		{"5531", 5531},
		{" 5531\t", 5531}, // surrounding white space is trimmed, as everywhere
		{1, 1},
		{"1", 1},
		{json.Number("5.531e3"), 5531}, // any JSON form of a whole number, as JSON Schema reads it
		{json.Number("9007199254740991"), 1<<53 - 1},
		{"9007199254740991", 1<<53 - 1},

		{0, 0},
		{"0", 0},
		{json.Number("-0"), 0},
		{"-0", 0},
		{-5, 0},
		{"-5", 0},
		{"+5", 0},
		{"007", 0},
		{"0x1F", 0},
		{"5 531", 0},
		{"5531.0", 0},
		{"5e3", 0},
		{"abc", 0},
		{"٥٥٣١", 0}, // Arabic-Indic digits
		{1.5, 0},
		{json.Number("1e-400"), 0},
		{json.Number("9007199254740992"), 0},
		{"9007199254740992", 0},
		{json.Number("9223372036854775807"), 0},
		{json.Number("9223372036854775808"), 0},
		{"99999999999999999999999999", 0},
		{json.Number("1e309"), 0},
		{true, 0},
		{false, 0},
		{map[string]any{"id": 5531}, 0},
		{[]any{5531}, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%T %v", tt.mauticID, tt.mauticID), func(t *testing.T) {
			got, err := votes.Decode(body(t, func(m, p map[string]any) { p["mautic_id"] = tt.mauticID }))
			if err != nil {
				t.Fatalf("Decode error: %v (an invalid mautic_id must not refuse the vote)", err)
			}
			v := got[0]
			var wantWarnings []string
			if tt.want == 0 {
				wantWarnings = []string{warning}
			}
			want := exampleVote()
			want.Participant.MauticID = tt.want
			want.Warnings = wantWarnings
			if !sameVote(v, want) {
				t.Errorf("got  %+v\nwant %+v", v, want)
			}
		})
	}
}

// TestDecodeErrorNamesTheVoteOnce checks that an error names a vote by its
// index once: "vote 3: choice: …" for the fourth vote of an array, and no
// index for a body that is a single vote, so that a caller that decodes the
// votes of a batch one by one and prefixes its own index ("vote 7777: ")
// does not print two ("vote 7777: vote 0: choice: …").
func TestDecodeErrorNamesTheVoteOnce(t *testing.T) {
	const reason = `must be "agree", "disagree" or "skip" (or 1, -1, 0)`
	bad := body(t, func(m, p map[string]any) { m["choice"] = "maybe" })

	_, err := votes.Decode(bad)
	if want := "choice: " + reason; err == nil || err.Error() != want {
		t.Errorf("single vote: error %v, want %q", err, want)
	}
	var de *votes.DecodeError
	if !errors.As(err, &de) || *de != (votes.DecodeError{Index: 0, Field: "choice", Reason: reason}) {
		t.Errorf("single vote: %#v", err)
	}
	if got := fmt.Sprintf("vote %d: %v", 7777, err); strings.Count(got, "vote") != 1 {
		t.Errorf("a caller's prefix gives %q: the vote is named twice", got)
	}

	arr := []byte("[" + string(body(t, nil)) + "," + string(bad) + "," + string(bad) + "]")
	_, err = votes.Decode(arr)
	want := "vote 1: choice: " + reason + "\nvote 2: choice: " + reason
	if err == nil || err.Error() != want {
		t.Errorf("array: error\n%v\nwant\n%s", err, want)
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.Count(line, "vote") != 1 {
			t.Errorf("array: line %q names the vote %d times", line, strings.Count(line, "vote"))
		}
	}
	if !errors.As(err, &de) || *de != (votes.DecodeError{Index: 1, InArray: true, Field: "choice", Reason: reason}) {
		t.Errorf("array: %#v", err)
	}
}

// TestDecodeHoldsNoContactValues checks that no decode error and no warning
// holds the participant's email, phone or name (LGPD): they name the vote
// and the field only. The messages carry distinctive contact details, valid
// or not, in their own fields and in others.
func TestDecodeHoldsNoContactValues(t *testing.T) {
	const (
		email = "ze.privado+lgpd@exemplo-secreto.com.br"
		phone = "+55 61 98765-4321"
		name  = "Maria Sigilosa da Silva"
	)
	// secrets are parts of the values that must appear nowhere.
	secrets := []string{"privado", "lgpd", "exemplo-secreto", "98765", "4321", "61987654321", "Sigilosa", "Maria"}
	with := func(edit func(m, p map[string]any)) map[string]any {
		return message(func(m, p map[string]any) {
			p["email"], p["phone"], p["name"] = email, phone, name
			if edit != nil {
				edit(m, p)
			}
		})
	}
	set := func(key string, v any) map[string]any { return with(func(m, p map[string]any) { m[key] = v }) }
	setP := func(key string, v any) map[string]any { return with(func(m, p map[string]any) { p[key] = v }) }
	var many []any
	for i := range 14 {
		many = append(many, with(func(m, p map[string]any) { m["choice"] = fmt.Sprint("maybe", i) }))
	}
	bodies := map[string][]byte{
		"refused vote":                mustJSON(t, set("choice", "maybe")),
		"refused votes of an array":   mustJSON(t, many),
		"email as vote_id":            mustJSON(t, set("vote_id", email+strings.Repeat("x", 64))),
		"email as conversation_id":    mustJSON(t, set("conversation_id", email)),
		"email as comment_id":         mustJSON(t, set("comment_id", email+"\x00")),
		"name as channel":             mustJSON(t, set("channel", "\n"+name+"\n!")),
		"name as voted_at":            mustJSON(t, set("voted_at", name)),
		"phone as choice":             mustJSON(t, set("choice", phone)),
		"phone as version":            mustJSON(t, set("version", json.Number("61987654321"))),
		"phone as version string":     mustJSON(t, set("version", phone)),
		"phone as participant.id":     mustJSON(t, setP("id", json.Number("-61987654321"))),
		"name as participant":         mustJSON(t, set("participant", name)),
		"non-ASCII email":             mustJSON(t, setP("email", "zé."+email)),
		"email with a display name":   mustJSON(t, setP("email", name+" <"+email+">")),
		"email with an IP domain":     mustJSON(t, setP("email", "ze.privado@192.168.98.765")),
		"email domain without ASCII":  mustJSON(t, setP("email", "ze.privado@exemplo-secreto-ü_.com.br")),
		"name with a newline":         mustJSON(t, setP("name", name+"\n"+name)),
		"name too long":               mustJSON(t, setP("name", name+strings.Repeat(" "+name, 20))),
		"phone with a newline":        mustJSON(t, setP("phone", phone+"\n"+phone)),
		"phone too long":              mustJSON(t, setP("phone", strings.Repeat(phone, 5))),
		"phone as a big number":       mustJSON(t, setP("phone", json.Number("6198765432100000"))),
		"phone as a negative number":  mustJSON(t, setP("phone", json.Number("-61987654321"))),
		"phone as mautic_id":          mustJSON(t, setP("mautic_id", phone)),
		"phone digits as mautic_id":   mustJSON(t, setP("mautic_id", json.Number("61987654321000000"))),
		"email as a number":           mustJSON(t, setP("email", json.Number("61987654321"))),
		"name as an array":            mustJSON(t, setP("name", []string{name})),
		"invalid UTF-8 in the email":  []byte(strings.Replace(string(mustJSON(t, with(nil))), "privado", "privado\xff", 1)),
		"invalid UTF-8 in the name":   []byte(strings.Replace(string(mustJSON(t, with(nil))), "Sigilosa", "Sigilosa\xff", 1)),
		"syntax error after the name": []byte(strings.Replace(string(mustJSON(t, with(nil))), `"`+name+`"`, `"`+name+`",,`, 1)),
		"syntax error in the email":   []byte(strings.Replace(string(mustJSON(t, with(nil))), "privado", `priv\ado`, 1)),
		"truncated after the phone":   []byte(string(mustJSON(t, with(nil)))[:strings.Index(string(mustJSON(t, with(nil))), "4321")+4]),
		"body too large":              append(bytes.Repeat([]byte(" "), votes.MaxBodySize), mustJSON(t, with(nil))...),
	}
	for what, b := range bodies {
		t.Run(what, func(t *testing.T) {
			got, err := votes.Decode(b)
			var texts []string
			if err != nil {
				texts = append(texts, err.Error())
			}
			for _, v := range got {
				texts = append(texts, v.Warnings...)
			}
			if len(texts) == 0 {
				t.Fatalf("Decode(%s) gave no error and no warning: not a test of them", b)
			}
			for _, text := range texts {
				for _, secret := range secrets {
					if strings.Contains(text, secret) {
						t.Errorf("%q holds %q", text, secret)
					}
				}
			}
		})
	}
}

func TestDecodeErrorAndIsPermanent(t *testing.T) {
	vote := &votes.DecodeError{Index: 2, InArray: true, Field: "participant.id", Reason: "is required"}
	body := &votes.DecodeError{Index: -1, Reason: "body is empty"}
	tests := []struct {
		name          string
		err           error
		wantMsg       string
		wantPermanent bool
	}{
		{"vote field", vote, "vote 2: participant.id: is required", true},
		{"whole vote", &votes.DecodeError{Index: 0, InArray: true, Reason: "must be a vote object"}, "vote 0: must be a vote object", true},
		{"single vote", &votes.DecodeError{Field: "choice", Reason: "is required"}, "choice: is required", true},
		{"body", body, "vote message: body is empty", true},
		{"wrapped", fmt.Errorf("message m-1: %w", vote), "message m-1: vote 2: participant.id: is required", true},
		{"joined", errors.Join(vote, body), "vote 2: participant.id: is required\nvote message: body is empty", true},
		{"other error", errors.New("mautic: 503"), "mautic: 503", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.wantMsg {
				t.Errorf("Error() = %q, want %q", got, tt.wantMsg)
			}
			if got := votes.IsPermanent(tt.err); got != tt.wantPermanent {
				t.Errorf("IsPermanent = %v, want %v", got, tt.wantPermanent)
			}
		})
	}
	if votes.IsPermanent(nil) {
		t.Error("IsPermanent(nil) = true, want false")
	}
}

func TestChoice(t *testing.T) {
	tests := []struct {
		choice   votes.Choice
		wantStr  string
		wantJSON string
	}{
		{votes.ChoiceAgree, "agree", `"agree"`},
		{votes.ChoiceDisagree, "disagree", `"disagree"`},
		{votes.ChoiceSkip, "skip", `"skip"`},
		{votes.Choice(5), "Choice(5)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.wantStr, func(t *testing.T) {
			if got := tt.choice.String(); got != tt.wantStr {
				t.Errorf("String() = %q, want %q", got, tt.wantStr)
			}
			got, err := json.Marshal(tt.choice)
			if tt.wantJSON == "" {
				if err == nil {
					t.Errorf("Marshal(%d) = %s, want an error", tt.choice, got)
				}
				return
			}
			if err != nil || string(got) != tt.wantJSON {
				t.Errorf("Marshal = %s, %v; want %s", got, err, tt.wantJSON)
			}
		})
	}
}

// TestVoteRoundTrip checks that a decoded vote marshals back to a message
// that decodes to the same vote, with its offset and without warnings.
func TestVoteRoundTrip(t *testing.T) {
	in := body(t, func(m, p map[string]any) {
		m["vote_id"], m["choice"], m["voted_at"] = 981234, -1, "2026-11-26T09:00:00.123-03:00"
		p["email"], p["name"] = "Ana@Example.org", "  "+strings.Repeat("n", 300)
	})
	first, err := votes.Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	out := mustJSON(t, first[0])
	second, err := votes.Decode(out)
	if err != nil {
		t.Fatalf("Decode(%s): %v", out, err)
	}
	want := first[0]
	want.Warnings = nil
	if !sameVote(second[0], want) || second[0].Warnings != nil {
		t.Errorf("round trip through %s\n got %+v\nwant %+v", out, second[0], want)
	}
	if _, offset := second[0].VotedAt.Zone(); offset != -3*3600 {
		t.Errorf("VotedAt offset = %d, want -3h (the message's own)", offset)
	}
}

// TestDecodeVotedAtOffsets checks every offset from -30:99 to +30:99: Decode
// accepts exactly -23:59 to +23:59 (minutes below 60), and every vote it
// accepts marshals back with the same offset.
func TestDecodeVotedAtOffsets(t *testing.T) {
	for _, sign := range []string{"+", "-"} {
		for h := 0; h <= 30; h++ {
			for _, m := range []int{0, 1, 30, 45, 59, 60, 61, 99} {
				at := fmt.Sprintf("2026-11-26T12:00:00%s%02d:%02d", sign, h, m)
				got, err := votes.Decode(body(t, func(mm, p map[string]any) { mm["voted_at"] = at }))
				wantOK := h < 24 && m < 60
				if (err == nil) != wantOK {
					t.Errorf("voted_at %s: error %v, want accepted %v", at, err, wantOK)
					continue
				}
				if err != nil {
					continue
				}
				out, err := json.Marshal(got[0])
				if err != nil {
					t.Errorf("voted_at %s: Marshal: %v", at, err)
					continue
				}
				again, err := votes.Decode(out)
				if err != nil {
					t.Errorf("voted_at %s: Decode(Marshal(vote)): %v", at, err)
					continue
				}
				_, off1 := got[0].VotedAt.Zone()
				_, off2 := again[0].VotedAt.Zone()
				if want := (h*60 + m) * 60; (sign == "+" && off1 != want) || (sign == "-" && off1 != -want) || off2 != off1 {
					t.Errorf("voted_at %s: offsets %d then %d, want %s%d s", at, off1, off2, sign, want)
				}
			}
		}
	}
}

// compileSchema compiles docs/vote.schema.json with format assertions on.
func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	abs, err := filepath.Abs(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile(abs)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaPath, err)
	}
	return sch
}

func validate(sch *jsonschema.Schema, b []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// TestSchemaAgreesWithDecode keeps docs/vote.schema.json and Decode in
// agreement: the schema's examples and testdata/valid are accepted by both
// (Decode without warnings), testdata/invalid is refused by both, Decode for
// the reason the file is named after.
func TestSchemaAgreesWithDecode(t *testing.T) {
	sch := compileSchema(t)

	t.Run("examples", func(t *testing.T) {
		raw, err := os.ReadFile(schemaPath)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Examples []json.RawMessage `json:"examples"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Examples) < 4 {
			t.Fatalf("schema has %d examples, want at least 4", len(doc.Examples))
		}
		for i, ex := range doc.Examples {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				checkAccepted(t, sch, ex)
			})
		}
	})

	files := func(dir string) []string {
		names, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		if err != nil || len(names) == 0 {
			t.Fatalf("no testdata/%s/*.json: %v", dir, err)
		}
		return names
	}
	t.Run("valid", func(t *testing.T) {
		for _, name := range files("valid") {
			t.Run(filepath.Base(name), func(t *testing.T) {
				b, err := os.ReadFile(name)
				if err != nil {
					t.Fatal(err)
				}
				checkAccepted(t, sch, b)
			})
		}
	})

	// wantInvalid is the start of Decode's error for each invalid file.
	wantInvalid := map[string]string{
		"array-of-numbers.json":        "vote 0: must be a vote object",
		"array-with-invalid.json":      "vote 1: choice: ",
		"channel-number.json":          "channel: must be a string",
		"choice-two.json":              "choice: ",
		"choice-unknown.json":          "choice: ",
		"comment_id-control.json":      "comment_id: must not contain control characters",
		"conversation_id-slash.json":   "conversation_id: must be 1-64 letters",
		"empty-array.json":             "vote message: body is an empty array",
		"missing-choice.json":          "choice: is required",
		"missing-comment_id.json":      "comment_id: is required",
		"missing-conversation_id.json": "conversation_id: is required",
		"missing-participant-id.json":  "participant.id: is required",
		"missing-participant.json":     "participant: is required",
		"missing-version.json":         "version: is required",
		"missing-vote_id.json":         "vote_id: is required",
		"missing-voted_at.json":        "voted_at: is required",
		"null-body.json":               "vote message: body must be a vote object",
		"null-vote_id.json":            "vote_id: is required",
		"participant-id-object.json":   "participant.id: must be a string or a whole number",
		"participant-string.json":      "participant: must be an object",
		"string-body.json":             "vote message: body must be a vote object",
		"truncated.json":               "vote message: body is not valid JSON",
		"version-0.json":               "version: must be a positive integer",
		"version-2.json":               "version: unsupported message version 2 (this consumer understands 1)",
		"version-string.json":          "version: must be an integer",
		"vote_id-bool.json":            "vote_id: must be a string or a whole number",
		"vote_id-empty.json":           "vote_id: must not be empty",
		"vote_id-fraction.json":        "vote_id: must be a string or a whole number",
		"vote_id-negative.json":        "vote_id: must not be negative",
		"vote_id-too-long.json":        "vote_id: must be at most 64 characters",
		"voted_at-1999.json":           "voted_at: must be in the years 2000 to 2100",
		"voted_at-no-zone.json":        "voted_at: must be an RFC 3339 date-time",
		"voted_at-number.json":         "voted_at: must be an RFC 3339 date-time",
	}
	t.Run("invalid", func(t *testing.T) {
		seen := map[string]bool{}
		for _, name := range files("invalid") {
			base := filepath.Base(name)
			seen[base] = true
			t.Run(base, func(t *testing.T) {
				b, err := os.ReadFile(name)
				if err != nil {
					t.Fatal(err)
				}
				if err := validate(sch, b); err == nil {
					t.Errorf("schema accepts %s, want it refused", b)
				}
				want, ok := wantInvalid[base]
				if !ok {
					t.Fatalf("no expected Decode error for %s in wantInvalid", base)
				}
				_, err = votes.Decode(b)
				if err == nil || !strings.HasPrefix(err.Error(), want) || !votes.IsPermanent(err) {
					t.Errorf("Decode error = %v, want a permanent error starting %q", err, want)
				}
			})
		}
		for base := range wantInvalid {
			if !seen[base] {
				t.Errorf("wantInvalid names %s, which is not in testdata/invalid", base)
			}
		}
	})
}

// wantDropped names, for each file of testdata/dropped, the participant
// fields Decode drops with a warning.
var wantDropped = map[string][]string{
	"email-number.json":       {"email"},
	"mautic_id-negative.json": {"mautic_id"},
	"mautic_id-text.json":     {"mautic_id"},
	"name-array.json":         {"name"},
	"phone-control.json":      {"phone"},
	"all-four.json":           {"phone", "email", "name", "mautic_id"},
}

// TestSchemaAgreesOnDropped checks testdata/dropped: bodies the schema
// refuses only for participant contact fields, which Decode drops with a
// warning each and keeps the vote. Without those fields, both accept them.
func TestSchemaAgreesOnDropped(t *testing.T) {
	sch := compileSchema(t)
	names, err := filepath.Glob(filepath.Join("testdata", "dropped", "*.json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no testdata/dropped/*.json: %v", err)
	}
	seen := map[string]bool{}
	for _, name := range names {
		base := filepath.Base(name)
		seen[base] = true
		t.Run(base, func(t *testing.T) {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			fields, ok := wantDropped[base]
			if !ok {
				t.Fatalf("no expected dropped fields for %s in wantDropped", base)
			}
			if err := validate(sch, b); err == nil {
				t.Errorf("schema accepts %s, want it refused", b)
			}
			got, err := votes.Decode(b)
			if err != nil || len(got) != 1 {
				t.Fatalf("Decode = %d votes, %v; want the vote", len(got), err)
			}
			var warned []string
			for _, w := range got[0].Warnings {
				field, _, _ := strings.Cut(w, ": ")
				warned = append(warned, strings.TrimPrefix(field, "participant."))
			}
			if !reflect.DeepEqual(warned, fields) {
				t.Errorf("warnings %q, want one for each of %q", got[0].Warnings, fields)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for _, f := range fields {
				delete(m["participant"].(map[string]any), f)
			}
			checkAccepted(t, sch, mustJSON(t, m))
		})
	}
	for base := range wantDropped {
		if !seen[base] {
			t.Errorf("wantDropped names %s, which is not in testdata/dropped", base)
		}
	}
}

// contactFields are the participant fields Decode drops with a warning when
// the schema refuses them, instead of refusing the vote.
var contactFields = []string{"phone", "email", "name", "mautic_id"}

// TestSchemaAgreesWithDecodeGenerated generates messages with random and
// edge values of voted_at and of the participant's contact fields, and
// checks that docs/vote.schema.json and Decode agree on each:
//
//   - Decode refuses the message exactly when the schema refuses it without
//     its contact fields;
//   - Decode drops a contact field with a warning exactly when the schema
//     refuses that field, and otherwise keeps its value (normalized);
//   - the vote Decode returns marshals to a message the schema accepts.
//
// Decode's documented leniencies are applied to the message before the
// schema sees it: white space around strings is trimmed, and an email
// whose domain is not ASCII may be kept in punycode.
func TestSchemaAgreesWithDecodeGenerated(t *testing.T) {
	sch := compileSchema(t)
	n := 4000
	if testing.Short() {
		n = 500
	}
	g := &gen{r: rand.New(rand.NewPCG(1, 2))}
	failures := 0
	for i := 0; i < n && failures < 20; i++ {
		m := message(func(m, p map[string]any) {
			if g.r.IntN(4) == 0 {
				m["voted_at"] = g.votedAt()
			}
			for _, f := range contactFields {
				switch g.r.IntN(12) {
				case 0:
					delete(p, f)
				case 1:
					p[f] = nil
				default:
					p[f] = g.field(f)
				}
			}
		})
		if msg := checkGenerated(sch, m); msg != "" {
			failures++
			t.Errorf("message %s:\n%s", mustJSON(t, m), msg)
		}
	}
}

// checkGenerated returns why Decode and the schema disagree on m, or "".
func checkGenerated(sch *jsonschema.Schema, m map[string]any) string {
	b, err := json.Marshal(m)
	if err != nil {
		return err.Error()
	}
	lenient := trimmed(m).(map[string]any)
	core := maps.Clone(lenient)
	coreP := maps.Clone(lenient["participant"].(map[string]any))
	core["participant"] = coreP
	for _, f := range contactFields {
		delete(coreP, f)
	}
	coreErr := validateValue(sch, core)
	got, err := votes.Decode(b)
	if (err == nil) != (coreErr == nil) {
		return fmt.Sprintf("Decode error: %v\nschema without contact fields: %v", err, coreErr)
	}
	if err != nil {
		return ""
	}
	v := got[0]
	warned := map[string]bool{}
	for _, w := range v.Warnings {
		field, _, _ := strings.Cut(w, ": ")
		warned[strings.TrimPrefix(field, "participant.")] = true
	}
	kept := map[string]any{
		"phone": v.Participant.Phone, "email": v.Participant.Email, "name": v.Participant.Name, "mautic_id": v.Participant.MauticID,
	}
	var problems []string
	for _, f := range contactFields {
		value, present := lenient["participant"].(map[string]any)[f]
		if !present {
			if warned[f] {
				problems = append(problems, f+": warned for an absent field")
			}
			continue
		}
		withF := maps.Clone(core)
		withF["participant"] = map[string]any{"id": coreP["id"], f: value}
		fErr := validateValue(sch, withF)
		if s, ok := value.(string); ok && f == "email" && idnEmail(s) {
			// Leniency: a Unicode domain is converted to punycode, or the
			// address dropped when it has no ASCII form.
			if warned[f] == (v.Participant.Email != "") {
				problems = append(problems, fmt.Sprintf("email: kept %q with warning %v", v.Participant.Email, warned[f]))
			}
			if v.Participant.Email != "" {
				withF["participant"] = map[string]any{"id": coreP["id"], f: v.Participant.Email}
				if err := validateValue(sch, withF); err != nil {
					problems = append(problems, fmt.Sprintf("email: kept %q, which the schema refuses: %v", v.Participant.Email, err))
				}
			}
			continue
		}
		switch {
		case fErr == nil && warned[f]:
			problems = append(problems, fmt.Sprintf("%s: the schema accepts %#v but Decode drops it with a warning", f, value))
		case fErr != nil && !warned[f]:
			problems = append(problems, fmt.Sprintf("%s: the schema refuses %#v but Decode keeps %#v without a warning: %v", f, value, kept[f], fErr))
		case fErr == nil:
			if want := normalized(f, value); kept[f] != want {
				problems = append(problems, fmt.Sprintf("%s: Decode keeps %#v, want %#v", f, kept[f], want))
			}
		case f == "name":
			// Cut, or dropped.
			if s, _ := value.(string); !strings.HasPrefix(s, v.Participant.Name) {
				problems = append(problems, fmt.Sprintf("name: kept %q, not a prefix of the name", v.Participant.Name))
			}
		default:
			if kept[f] != reflect.Zero(reflect.TypeOf(kept[f])).Interface() {
				problems = append(problems, fmt.Sprintf("%s: warned but kept %#v", f, kept[f]))
			}
		}
	}
	out, err := json.Marshal(v)
	if err != nil {
		problems = append(problems, "Marshal(vote): "+err.Error())
	} else if err := validate(sch, out); err != nil {
		problems = append(problems, fmt.Sprintf("the schema refuses the decoded vote %s: %v", out, err))
	}
	return strings.Join(problems, "\n")
}

func validateValue(sch *jsonschema.Schema, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return validate(sch, b)
}

// trimmed returns v with surrounding white space trimmed from its strings,
// as Decode does.
func trimmed(v any) any {
	switch v := v.(type) {
	case string:
		return strings.TrimSpace(v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = trimmed(e)
		}
		return out
	}
	return v
}

// idnEmail reports whether s is an address with an ASCII local part and a
// domain that is not ASCII.
func idnEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	isASCII := func(s string) bool { return strings.IndexFunc(s, func(r rune) bool { return r >= utf8.RuneSelf }) < 0 }
	return ok && isASCII(local) && !isASCII(domain)
}

// normalized is the value Decode keeps for a contact field the schema
// accepts.
func normalized(field string, value any) any {
	if value == nil {
		if field == "mautic_id" {
			return int64(0)
		}
		return ""
	}
	switch field {
	case "email":
		s, _ := value.(string)
		if local, domain, ok := strings.Cut(s, "@"); ok {
			return local + "@" + strings.ToLower(domain)
		}
		return s
	case "mautic_id":
		switch value := value.(type) {
		case json.Number:
			r, _ := new(big.Rat).SetString(string(value))
			return r.Num().Int64()
		case string:
			if value == "" {
				return int64(0)
			}
			id, _ := strconv.ParseInt(value, 10, 64)
			return id
		}
	case "phone":
		if n, ok := value.(json.Number); ok {
			r, _ := new(big.Rat).SetString(string(n))
			return r.Num().String()
		}
	}
	return value
}

// gen makes random and edge values for generated messages.
type gen struct{ r *rand.Rand }

func (g *gen) pick(options ...string) string { return options[g.r.IntN(len(options))] }

// chars are the characters random strings are made of: ASCII, white space,
// controls, and non-ASCII letters, marks, symbols and separators.
var chars = []rune("aAzZ09._-+@ !\"#$%&'()*,/:;<=>?[\\]^`{|}~\t\n\r\x00\x1b\x7fãçéüßñÀ。．＠ｅ\u00a0\u0085\u200b\u200d\u2028\u202e\u0301🌱€")

func (g *gen) text(max int) string {
	n := g.r.IntN(max + 1)
	rs := make([]rune, n)
	for i := range rs {
		if g.r.IntN(3) == 0 {
			rs[i] = chars[g.r.IntN(len(chars))]
		} else {
			rs[i] = rune('a' + g.r.IntN(26))
		}
	}
	return string(rs)
}

// mutate sometimes changes s a little: white space around it, a character
// inserted, replaced or removed.
func (g *gen) mutate(s string) string {
	rs := []rune(s)
	switch g.r.IntN(8) {
	case 0:
		return g.pick(" ", "\t", "\n", "\u00a0", "\u3000") + s + g.pick("", " ", "\r\n")
	case 1:
		i := g.r.IntN(len(rs) + 1)
		return string(rs[:i]) + string(chars[g.r.IntN(len(chars))]) + string(rs[i:])
	case 2:
		if len(rs) > 0 {
			i := g.r.IntN(len(rs))
			return string(rs[:i]) + string(rs[i+1:])
		}
	case 3:
		if len(rs) > 0 {
			i := g.r.IntN(len(rs))
			rs[i] = chars[g.r.IntN(len(chars))]
			return string(rs)
		}
	}
	return s
}

func (g *gen) field(f string) any {
	if g.r.IntN(20) == 0 { // a value of another JSON type
		return []any{true, false, json.Number("0"), json.Number("42"), json.Number("-1"), json.Number("1.5"), "", map[string]any{}, []any{"a"}}[g.r.IntN(9)]
	}
	switch f {
	case "email":
		return g.email()
	case "name":
		return g.name()
	case "mautic_id":
		return g.mauticID()
	case "phone":
		return g.phone()
	}
	panic(f)
}

func (g *gen) email() string {
	local := g.pick("ana", "Ana.Silva+EJ", "a!#$'+=?_`{|}~-z", "a%b", "a&b", "a*b", "a^b", "a/b", "a..b", ".a", "a.",
		"joão", "ü", "ｊｏａｏ", "a b", `"a"`, `"a b"`, "Ana <a", "", strings.Repeat("a", 64), strings.Repeat("a", 65), "a@b", "1")
	label63 := strings.Repeat("d", 63)
	domain := g.pick("example.org", "Example.ORG", "sub-1.example.org", "x", "x.", ".x.org", "x..org", "-x.org", "x-.org",
		"x.1org", "1.x", "x.o", "x.o-", "192.168.0.1", "[1.2.3.4]", "[IPv6:::1]", "ex_ample.org", "münchen.de", "MÜNCHEN.DE",
		"açaí.com.br", "ｅｘａｍｐｌｅ.org", "ü.org.", "exä mple.org", "ü_x.org", "ü.-x.org", "xn--mnchen-3ya.de", "x.org>",
		"x.org (Ana)", "x.org, b@y.org", "", label63+".org", label63+"d.org",
		label63+"."+label63+"."+label63+"."+strings.Repeat("e", 60), label63+"."+label63+"."+label63+"."+strings.Repeat("e", 61))
	s := local + "@" + domain
	switch g.r.IntN(10) {
	case 0:
		return g.text(30)
	case 1:
		return local
	}
	return g.mutate(s)
}

func (g *gen) name() string {
	switch g.r.IntN(6) {
	case 0:
		return g.pick("Ana", "", "  Ana ", "Ana\nBia", "\x1b[31m", "\u0085", "\u00a0Ana", "Ana\u200b", "A\u2028B", "João 🌱")
	case 1:
		return strings.Repeat(g.pick("a", "ã", "🌱", " "), 250+g.r.IntN(10)) + g.mutate("xyz")
	}
	return g.mutate(g.text(40))
}

func (g *gen) mauticID() any {
	switch g.r.IntN(5) {
	case 0:
		return json.Number(g.pick("0", "-0", "1", "-5", "5531", "5.531e3", "5531.0", "1.5", "1e-400", "9007199254740991",
			"9007199254740992", "9223372036854775807", "9223372036854775808", "1e309", "1E2"))
	case 1:
		return json.Number(strconv.FormatUint(g.r.Uint64N(1<<54), 10))
	case 2:
		return strconv.FormatUint(g.r.Uint64N(1<<54), 10)
	}
	return g.mutate(g.pick("5531", "0", "-0", "+5", "007", "0x1F", "5 531", "5531.0", "5e3", "abc", "٥٥٣١", "", "9007199254740991",
		"9007199254740992", "99999999999999999999999999", "1"))
}

func (g *gen) phone() any {
	switch g.r.IntN(4) {
	case 0:
		return json.Number(g.pick("0", "-0", "-1", "1.5", "1e309", "1e3", "1E3", "61999998888", "6.1999998888e10",
			"999999999999999", "1000000000000000", "1e-400", "123.0", "-61999998888"))
	case 1:
		return strings.Repeat(g.pick("9", "(61) ", "+"), 10+g.r.IntN(8)) + g.mutate("12")
	}
	return g.mutate(g.pick("61999998888", "+55 (61) 99999-8888", "", "(61) 3333-4444", "+351 912 345 678", "tel:+5561999998888",
		"61 99999\n8888", "\x0061999998888", "６１９９９９９８８８８"))
}

func (g *gen) votedAt() string {
	if g.r.IntN(3) == 0 {
		return g.mutate(g.pick("2026-11-26T12:00:00Z", "2026-11-26T09:00:00.5-03:00", "2000-01-01T00:30:00+01:00"))
	}
	return g.pick("2026", "1999", "2000", "2100", "2101", "02026") + "-" + g.pick("11", "01", "12", "00", "13", "1") + "-" +
		g.pick("26", "01", "28", "29", "30", "31", "32", "00") + g.pick("T", "T", "T", "t", " ") +
		g.pick("12", "00", "23", "24") + ":" + g.pick("00", "59", "60") + ":" + g.pick("00", "59", "60") +
		g.pick("", "", ".5", ".123456789", ".1234567890123", ".", ",5", ",") +
		g.pick("Z", "Z", "+00:00", "-00:00", "-03:00", "+23:59", "-23:59", "+24:00", "-24:00", "+01:60", "+0100", "+1:00", "z", "", "UTC", "+05:30")
}

func checkAccepted(t *testing.T, sch *jsonschema.Schema, b []byte) {
	t.Helper()
	if err := validate(sch, b); err != nil {
		t.Errorf("schema refuses %s:\n%v", b, err)
	}
	got, err := votes.Decode(b)
	if err != nil {
		t.Errorf("Decode(%s): %v", b, err)
	}
	for _, v := range got {
		if v.Warnings != nil {
			t.Errorf("vote %s: warnings %q, want none", v.VoteID, v.Warnings)
		}
	}
}

var conversationIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// FuzzDecode checks that Decode never panics, that every error is
// permanent, that every vote it returns is sound and marshals back to a
// message that the schema accepts and that decodes to the same vote, and
// that Decode accepts every body the schema accepts.
func FuzzDecode(f *testing.F) {
	sch := compileSchema(f)
	for _, dir := range []string{"valid", "invalid", "dropped"} {
		names, _ := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		for _, name := range names {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := votes.Decode(b)
		if err != nil && !votes.IsPermanent(err) {
			t.Fatalf("error %v is not permanent", err)
		}
		// The schema judges Unicode text: a validator reads invalid
		// UTF-8 and lone surrogates as U+FFFD, which Decode refuses.
		if err != nil && len(b) <= votes.MaxBodySize && unicodeText(b) && validate(sch, b) == nil {
			t.Fatalf("the schema accepts %q but Decode refuses it: %v", b, err)
		}
		if err == nil && len(got) == 0 {
			t.Fatal("no votes and no error")
		}
		for _, v := range got {
			checkSound(t, v)
			out, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("Marshal(%+v): %v", v, err)
			}
			if err := validate(sch, out); err != nil {
				t.Fatalf("the schema refuses the decoded vote %s: %v", out, err)
			}
			again, err := votes.Decode(out)
			if err != nil || len(again) != 1 {
				t.Fatalf("Decode(Marshal(vote)) = %v, %v for %s", again, err, out)
			}
			want := v
			want.Warnings = nil
			if !sameVote(again[0], want) || again[0].Warnings != nil {
				t.Fatalf("round trip through %s\n got %+v\nwant %+v", out, again[0], want)
			}
		}
	})
}

// unicodeText reports whether the JSON text b is valid UTF-8 without an
// escaped lone UTF-16 surrogate.
func unicodeText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	surrogate := func(i, lo, hi int) bool { // \uXXXX at i, XXXX in [lo, hi)
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return false
		}
		r, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 32)
		return err == nil && int(r) >= lo && int(r) < hi
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		switch {
		case surrogate(i, 0xdc00, 0xe000):
			return false
		case surrogate(i, 0xd800, 0xdc00):
			if !surrogate(i+6, 0xdc00, 0xe000) {
				return false
			}
			i += 11
		default:
			i++ // the escaped character, which may be a backslash
		}
	}
	return true
}

func checkSound(t *testing.T, v votes.Vote) {
	t.Helper()
	if v.Version != votes.MessageVersion {
		t.Errorf("Version = %d", v.Version)
	}
	for name, id := range map[string]string{
		"VoteID": v.VoteID, "ConversationID": v.ConversationID, "CommentID": v.CommentID, "Participant.ID": v.Participant.ID,
	} {
		if id == "" || id != strings.TrimSpace(id) || utf8.RuneCountInString(id) > 64 || strings.IndexFunc(id, unicode.IsControl) >= 0 {
			t.Errorf("%s = %q: want 1-64 characters, trimmed, no control characters", name, id)
		}
	}
	if !conversationIDRe.MatchString(v.ConversationID) {
		t.Errorf("ConversationID = %q: not a valid conversation id", v.ConversationID)
	}
	switch v.Choice {
	case votes.ChoiceAgree, votes.ChoiceDisagree, votes.ChoiceSkip:
	default:
		t.Errorf("Choice = %d", v.Choice)
	}
	if y := v.VotedAt.Year(); y < 2000 || y > 2100 {
		t.Errorf("VotedAt = %v", v.VotedAt)
	}
	if v.Participant.MauticID < 0 {
		t.Errorf("MauticID = %d", v.Participant.MauticID)
	}
	if utf8.RuneCountInString(v.Participant.Name) > 255 || utf8.RuneCountInString(v.Participant.Phone) > 64 {
		t.Errorf("participant %+v: name or phone too long", v.Participant)
	}
}

func BenchmarkDecode(b *testing.B) {
	one := body(b, nil)
	var batch []any
	for i := range 100 {
		batch = append(batch, message(func(m, p map[string]any) {
			m["vote_id"], m["comment_id"], m["choice"] = 981234+i, i%7, i%3-1
			p["id"] = 1000 + i
		}))
	}
	hundred := mustJSON(b, batch)
	for _, bm := range []struct {
		name string
		body []byte
	}{{"one", one}, {"array100", hundred}} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(len(bm.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := votes.Decode(bm.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func ExampleDecode() {
	body := []byte(`[
	  {"version": 1, "vote_id": 981234, "conversation_id": 42, "comment_id": 7, "choice": 1,
	   "voted_at": "2026-11-26T12:00:00Z", "participant": {"id": 1001, "phone": "61999998888"}},
	  {"version": 2, "vote_id": 981235}
	]`)
	vs, err := votes.Decode(body)
	for _, v := range vs {
		e164, _ := phonepkg.Normalize(v.Participant.Phone, "BR")
		fmt.Println(v.ConversationID, v.VoteID, v.Choice, e164)
	}
	if votes.IsPermanent(err) {
		fmt.Println("to the DLQ:", err)
	}
	// Output:
	// 42 981234 agree +5561999998888
	// to the DLQ: vote 1: version: unsupported message version 2 (this consumer understands 1)
}
