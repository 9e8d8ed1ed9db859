// Package secretsmanagertest is an in-process AWS Secrets Manager for tests:
// an [http.Handler] that speaks the service's AWS JSON 1.1 protocol, and an
// [httptest] server around it that the real aws-sdk-go-v2 client talks to.
//
// No Secrets Manager emulator can be installed on the machines this project
// is built and tested on: the usual ones (LocalStack, moto) need Docker or
// PyPI, and neither is available there. So this package stands in for one,
// kept small and faithful to what the service does on the wire:
//
//   - POST / with X-Amz-Target: secretsmanager.<Operation> and a JSON body;
//     replies are application/x-amz-json-1.1, errors are HTTP 400 (500 for
//     InternalServiceError) with {"__type":"<Exception>","message":"…"} and
//     the service's exception names and messages.
//   - Requests must carry a SigV4 Authorization header (the signature itself
//     is not checked).
//   - Operations: CreateSecret, GetSecretValue, PutSecretValue, UpdateSecret,
//     DeleteSecret, RestoreSecret, DescribeSecret and ListSecrets. Others
//     answer UnknownOperationException.
//   - Secrets are found by name, full ARN, or ARN without the random suffix.
//   - Versions carry staging labels: a new value becomes AWSCURRENT and the
//     old current one AWSPREVIOUS; ClientRequestToken is the version id and
//     makes a repeated request a no-op (a different value under a used token
//     is ResourceExistsException). Versions without labels are pruned past
//     100, as the service does.
//   - DeleteSecret schedules deletion (RecoveryWindowInDays, 7 to 30, default
//     30): until then the secret can be described and restored, every other
//     use answers InvalidRequestException, and CreateSecret under its name is
//     refused. ForceDeleteWithoutRecovery deletes at once, also a secret that
//     is already scheduled for deletion, and succeeds for a secret that does
//     not exist. On AWS that deletion is asynchronous; SetForceDeleteDelay
//     reproduces the short window in which the name is still taken.
//
// It is not a security boundary and not a model of KMS, rotation,
// replication, resource policies or quotas. Values are kept in memory only.
//
// Tests use [NewServer] and [Server.Client]; [Handler.Calls] counts requests
// per operation (benchmarks count Secrets Manager reads with it), and
// [Handler.SetFailNext] queues error responses for retry tests.
package secretsmanagertest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// The account and region the server pretends to be in; they appear in ARNs.
const (
	Region    = "us-east-1"
	AccountID = "123456789012"
)

const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"

	maxNameLen    = 512
	maxValueLen   = 65536
	maxVersions   = 100
	maxBodyLen    = 1 << 20
	arnPrefix     = "arn:aws:secretsmanager:" + Region + ":" + AccountID + ":secret:"
	arnSuffixLen  = 6
	alphanumerics = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// The service's messages, as it words them.
const (
	msgNotFound         = "Secrets Manager can't find the specified secret."
	msgMarkedDeleted    = "You can't perform this operation on the secret because it was marked for deletion."
	msgDeleted          = "You can't perform this operation on the secret because it was deleted."
	msgCreateScheduled  = "You can't create this secret because a secret with this name is already scheduled for deletion."
	msgBothValues       = "You can't specify both a binary secret value and a string secret value in the same secret."
	msgNoValue          = "You must provide either SecretString or SecretBinary."
	msgVersionImmutable = "You can't modify an existing version, you can only create a new version."
	msgInvalidName      = "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
	msgForceAndWindow   = "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
	msgWindowRange      = "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
)

// Error is an error response: its HTTP status, exception name (the JSON
// "__type") and message. The operations return them; tests queue them with
// [Handler.SetFailNext].
type Error struct {
	Status  int
	Type    string
	Message string
}

// Error returns "Type: Message".
func (e *Error) Error() string { return e.Type + ": " + e.Message }

// InternalServiceError is the 500 the service answers when it fails; the
// SDK retries it.
func InternalServiceError() *Error {
	return &Error{Status: http.StatusInternalServerError, Type: "InternalServiceError", Message: "An error occurred on the server side."}
}

// ThrottlingException is the 400 the service answers over its request
// quota; the SDK retries it.
func ThrottlingException() *Error {
	return &Error{Status: http.StatusBadRequest, Type: "ThrottlingException", Message: "Rate exceeded"}
}

func clientError(typ, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Type: typ, Message: msg}
}

func notFound() *Error               { return clientError("ResourceNotFoundException", msgNotFound) }
func invalidRequest(m string) *Error { return clientError("InvalidRequestException", m) }
func invalidParam(m string) *Error   { return clientError("InvalidParameterException", m) }

// validation words a ValidationException as the service does; it never
// echoes the value, which may be secret.
func validation(field, constraint string) *Error {
	return clientError("ValidationException",
		fmt.Sprintf("1 validation error detected: Value at '%s' failed to satisfy constraint: %s", field, constraint))
}

// Handler is the Secrets Manager service as an [http.Handler]. Its zero
// value is not usable; create one with [NewHandler]. It is safe for
// concurrent use.
type Handler struct {
	mu               sync.Mutex
	secrets          map[string]*secret // by name
	calls            map[string]int
	failNext         map[string][]*Error
	forceDeleteDelay time.Duration
}

type secret struct {
	name, arn   string
	description string
	kmsKeyID    string
	tags        []tag
	created     time.Time
	changed     time.Time
	accessed    time.Time // day of the last GetSecretValue; zero if never
	deleted     time.Time // when DeleteSecret was called; zero if not deleted
	purgeAt     time.Time // when the deletion takes effect
	forced      bool      // deleted with ForceDeleteWithoutRecovery
	versions    []*version
}

type version struct {
	id      string
	str     *string
	bin     []byte
	stages  []string
	created time.Time
}

type tag struct {
	Key   *string `json:",omitempty"`
	Value *string `json:",omitempty"`
}

// NewHandler returns a Secrets Manager with no secrets.
func NewHandler() *Handler {
	return &Handler{
		secrets:  make(map[string]*secret),
		calls:    make(map[string]int),
		failNext: make(map[string][]*Error),
	}
}

// Calls returns how many requests each operation received (by operation
// name, e.g. "GetSecretValue"), including those answered with an error and
// the SDK's retries.
func (h *Handler) Calls() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.calls)
}

// ResetCalls sets every count back to zero.
func (h *Handler) ResetCalls() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.calls)
}

// SetFailNext makes the next request for operation op (e.g.
// "GetSecretValue") fail with err, without touching any secret. Calls
// queue: calling it twice fails the next two requests.
func (h *Handler) SetFailNext(op string, err *Error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failNext[op] = append(h.failNext[op], err)
}

// SetForceDeleteDelay makes ForceDeleteWithoutRecovery take effect after d
// instead of at once. Until then the secret behaves as scheduled for
// deletion: reads fail with InvalidRequestException, CreateSecret under its
// name is refused, and it cannot be restored. This is the asynchronous
// deletion the service documents.
func (h *Handler) SetForceDeleteDelay(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.forceDeleteDelay = d
}

// operation returns the implementation of an X-Amz-Target operation name,
// or nil. Implementations run with h.mu held.
func operation(op string) func(h *Handler, body []byte, now time.Time) (any, *Error) {
	switch op {
	case "CreateSecret":
		return (*Handler).createSecret
	case "GetSecretValue":
		return (*Handler).getSecretValue
	case "PutSecretValue":
		return (*Handler).putSecretValue
	case "UpdateSecret":
		return (*Handler).updateSecret
	case "DeleteSecret":
		return (*Handler).deleteSecret
	case "RestoreSecret":
		return (*Handler).restoreSecret
	case "DescribeSecret":
		return (*Handler).describeSecret
	case "ListSecrets":
		return (*Handler).listSecrets
	}
	return nil
}

// ServeHTTP answers one Secrets Manager request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		writeError(w, &Error{Status: http.StatusNotFound, Type: "UnknownOperationException", Message: "Unknown operation"})
		return
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "secretsmanager.")
	impl := operation(op)
	if !ok || impl == nil {
		writeError(w, clientError("UnknownOperationException", "Unknown operation "+r.Header.Get("X-Amz-Target")))
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		writeError(w, clientError("MissingAuthenticationTokenException", "Missing Authentication Token"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyLen))
	if err != nil {
		writeError(w, &Error{Status: http.StatusRequestEntityTooLarge, Type: "SerializationException", Message: "Request body too large or unreadable"})
		return
	}

	h.mu.Lock()
	h.calls[op]++
	var (
		out  any
		oerr *Error
	)
	if q := h.failNext[op]; len(q) > 0 {
		oerr, h.failNext[op] = q[0], q[1:]
	} else {
		out, oerr = impl(h, body, time.Now())
	}
	h.mu.Unlock()

	if oerr != nil {
		writeError(w, oerr)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeError(w, InternalServiceError())
		return
	}
	writeBody(w, http.StatusOK, b)
}

func writeError(w http.ResponseWriter, e *Error) {
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{e.Type, e.Message})
	writeBody(w, e.Status, b)
}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", newUUID())
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// decode reads a request body; like the service it ignores unknown members.
func decode(body []byte, v any) *Error {
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return clientError("SerializationException", "The request body could not be read as the operation's JSON input.")
	}
	return nil
}

// epoch is a timestamp in the protocol's form: seconds since the Unix epoch,
// as a JSON number with milliseconds.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return fmt.Appendf(nil, "%d.%03d", ms/1000, ms%1000), nil
}

func epochPtr(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

// lookup finds a secret by name, full ARN or ARN without its random suffix,
// purging it first if its deletion has taken effect. It does not check
// whether the secret is scheduled for deletion.
func (h *Handler) lookup(id string, now time.Time) *secret {
	var s *secret
	if rest, ok := strings.CutPrefix(id, arnPrefix); ok {
		for _, c := range h.secrets {
			if c.arn == id {
				s = c
				break
			}
		}
		if s == nil {
			s = h.secrets[rest] // partial ARN
		}
	} else {
		s = h.secrets[id]
	}
	if s != nil && !s.purgeAt.IsZero() && !now.Before(s.purgeAt) {
		delete(h.secrets, s.name)
		return nil
	}
	return s
}

// live finds a secret that is not scheduled for deletion.
func (h *Handler) live(id *string, now time.Time) (*secret, *Error) {
	if e := checkSecretID(id); e != nil {
		return nil, e
	}
	s := h.lookup(*id, now)
	if s == nil {
		return nil, notFound()
	}
	if !s.deleted.IsZero() {
		return nil, invalidRequest(msgMarkedDeleted)
	}
	return s, nil
}

func checkSecretID(id *string) *Error {
	switch {
	case id == nil || *id == "":
		return validation("secretId", "Member must have length greater than or equal to 1")
	case len(*id) > 2048:
		return validation("secretId", "Member must have length less than or equal to 2048")
	}
	return nil
}

func checkName(name *string) *Error {
	switch {
	case name == nil || *name == "":
		return validation("name", "Member must have length greater than or equal to 1")
	case len(*name) > maxNameLen:
		return validation("name", fmt.Sprintf("Member must have length less than or equal to %d", maxNameLen))
	}
	for _, r := range *name {
		if !validNameRune(r) {
			return invalidParam(msgInvalidName)
		}
	}
	return nil
}

// validNameRune reports whether r may appear in a secret name: ASCII
// letters, digits and /_+=.@-.
func validNameRune(r rune) bool {
	return r < 0x80 && (strings.ContainsRune(alphanumerics, r) || strings.ContainsRune("/_+=.@-", r))
}

// checkValue validates a SecretString/SecretBinary pair; required says
// whether one of them must be present.
func checkValue(str *string, bin []byte, required bool) *Error {
	switch {
	case str != nil && bin != nil:
		return invalidParam(msgBothValues)
	case required && str == nil && bin == nil:
		return invalidRequest(msgNoValue)
	case str != nil && len(*str) > maxValueLen:
		return validation("secretString", fmt.Sprintf("Member must have length less than or equal to %d", maxValueLen))
	case len(bin) > maxValueLen:
		return validation("secretBinary", fmt.Sprintf("Member must have length less than or equal to %d", maxValueLen))
	}
	return nil
}

func checkToken(token *string) *Error {
	if token == nil {
		return nil
	}
	switch n := len(*token); {
	case n < 32:
		return validation("clientRequestToken", "Member must have length greater than or equal to 32")
	case n > 64:
		return validation("clientRequestToken", "Member must have length less than or equal to 64")
	}
	return nil
}

func (s *secret) version(id string) *version {
	for _, v := range s.versions {
		if v.id == id {
			return v
		}
	}
	return nil
}

func (s *secret) staged(stage string) *version {
	for _, v := range s.versions {
		if slices.Contains(v.stages, stage) {
			return v
		}
	}
	return nil
}

func (s *secret) stagesByVersion() map[string][]string {
	m := make(map[string][]string)
	for _, v := range s.versions {
		if len(v.stages) > 0 {
			m[v.id] = slices.Clone(v.stages)
		}
	}
	return m
}

func sameValue(v *version, str *string, bin []byte) bool {
	if (v.str == nil) != (str == nil) || (v.bin == nil) != (bin == nil) {
		return false
	}
	if str != nil {
		return *v.str == *str
	}
	return string(v.bin) == string(bin)
}

// addVersion stores a new value under token (or a fresh id) and gives it
// stages, moving those labels off other versions; moving AWSCURRENT makes
// the old current version AWSPREVIOUS. A token that names an existing
// version with the same value is an idempotent retry and returns it.
func (s *secret) addVersion(token *string, str *string, bin []byte, stages []string, now time.Time) (*version, *Error) {
	id := newUUID()
	if token != nil {
		id = *token
		if v := s.version(id); v != nil {
			if sameValue(v, str, bin) {
				return v, nil
			}
			return nil, clientError("ResourceExistsException", msgVersionImmutable)
		}
	}
	v := &version{id: id, str: str, bin: slices.Clone(bin), created: now}
	for _, stage := range stages {
		old := s.staged(stage)
		if old == nil {
			continue
		}
		old.stages = slices.DeleteFunc(old.stages, func(x string) bool { return x == stage })
		if stage == stageCurrent {
			if prev := s.staged(stagePrevious); prev != nil {
				prev.stages = slices.DeleteFunc(prev.stages, func(x string) bool { return x == stagePrevious })
			}
			old.stages = append(old.stages, stagePrevious)
		}
	}
	v.stages = slices.Clone(stages)
	s.versions = append(s.versions, v)
	for len(s.versions) > maxVersions {
		i := slices.IndexFunc(s.versions, func(x *version) bool { return len(x.stages) == 0 })
		if i < 0 {
			break
		}
		s.versions = slices.Delete(s.versions, i, i+1)
	}
	s.changed = now
	return v, nil
}

type createSecretInput struct {
	Name               *string
	SecretString       *string
	SecretBinary       []byte
	ClientRequestToken *string
	Description        *string
	KmsKeyId           *string
	Tags               []tag
}

type secretRef struct {
	ARN       *string `json:",omitempty"`
	Name      *string `json:",omitempty"`
	VersionId *string `json:",omitempty"`
}

func ref(s *secret, v *version) secretRef {
	r := secretRef{ARN: aws.String(s.arn), Name: aws.String(s.name)}
	if v != nil {
		r.VersionId = aws.String(v.id)
	}
	return r
}

func (h *Handler) createSecret(body []byte, now time.Time) (any, *Error) {
	var in createSecretInput
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := checkName(in.Name); e != nil {
		return nil, e
	}
	if e := checkValue(in.SecretString, in.SecretBinary, false); e != nil {
		return nil, e
	}
	if e := checkToken(in.ClientRequestToken); e != nil {
		return nil, e
	}
	if s := h.lookup(*in.Name, now); s != nil {
		if !s.deleted.IsZero() {
			return nil, invalidRequest(msgCreateScheduled)
		}
		// A retry of the request that created it is answered as it was.
		if in.ClientRequestToken != nil {
			if v := s.version(*in.ClientRequestToken); v != nil && sameValue(v, in.SecretString, in.SecretBinary) {
				return ref(s, v), nil
			}
		}
		return nil, clientError("ResourceExistsException",
			fmt.Sprintf("The operation failed because the secret %s already exists.", *in.Name))
	}
	s := &secret{
		name:        *in.Name,
		arn:         arnPrefix + *in.Name + "-" + randomString(arnSuffixLen),
		description: aws.ToString(in.Description),
		kmsKeyID:    aws.ToString(in.KmsKeyId),
		tags:        slices.Clone(in.Tags),
		created:     now,
		changed:     now,
	}
	var v *version
	if in.SecretString != nil || in.SecretBinary != nil {
		v, _ = s.addVersion(in.ClientRequestToken, in.SecretString, in.SecretBinary, []string{stageCurrent}, now)
	}
	h.secrets[s.name] = s
	return ref(s, v), nil
}

type getSecretValueInput struct {
	SecretId     *string
	VersionId    *string
	VersionStage *string
}

type getSecretValueOutput struct {
	ARN           string
	Name          string
	VersionId     string
	SecretString  *string `json:",omitempty"`
	SecretBinary  []byte  `json:",omitempty"`
	VersionStages []string
	CreatedDate   epoch
}

func (h *Handler) getSecretValue(body []byte, now time.Time) (any, *Error) {
	var in getSecretValueInput
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	s, e := h.live(in.SecretId, now)
	if e != nil {
		return nil, e
	}
	var v *version
	switch {
	case in.VersionId != nil:
		v = s.version(*in.VersionId)
		if v != nil && in.VersionStage != nil && !slices.Contains(v.stages, *in.VersionStage) {
			v = nil
		}
		if v == nil {
			return nil, clientError("ResourceNotFoundException",
				"Secrets Manager can't find the specified secret value for VersionId: "+*in.VersionId)
		}
	default:
		stage := stageCurrent
		if in.VersionStage != nil {
			stage = *in.VersionStage
		}
		if v = s.staged(stage); v == nil {
			return nil, clientError("ResourceNotFoundException",
				"Secrets Manager can't find the specified secret value for staging label: "+stage)
		}
	}
	s.accessed = now.UTC().Truncate(24 * time.Hour)
	return getSecretValueOutput{
		ARN:           s.arn,
		Name:          s.name,
		VersionId:     v.id,
		SecretString:  v.str,
		SecretBinary:  v.bin,
		VersionStages: slices.Clone(v.stages),
		CreatedDate:   epoch(v.created),
	}, nil
}

type putSecretValueInput struct {
	SecretId           *string
	SecretString       *string
	SecretBinary       []byte
	ClientRequestToken *string
	VersionStages      []string
}

type putSecretValueOutput struct {
	secretRef
	VersionStages []string
}

func (h *Handler) putSecretValue(body []byte, now time.Time) (any, *Error) {
	var in putSecretValueInput
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := checkSecretID(in.SecretId); e != nil {
		return nil, e
	}
	if e := checkValue(in.SecretString, in.SecretBinary, true); e != nil {
		return nil, e
	}
	if e := checkToken(in.ClientRequestToken); e != nil {
		return nil, e
	}
	s, e := h.live(in.SecretId, now)
	if e != nil {
		return nil, e
	}
	stages := in.VersionStages
	if len(stages) == 0 {
		stages = []string{stageCurrent}
	}
	v, e := s.addVersion(in.ClientRequestToken, in.SecretString, in.SecretBinary, stages, now)
	if e != nil {
		return nil, e
	}
	return putSecretValueOutput{secretRef: ref(s, v), VersionStages: slices.Clone(v.stages)}, nil
}

type updateSecretInput struct {
	SecretId           *string
	SecretString       *string
	SecretBinary       []byte
	ClientRequestToken *string
	Description        *string
	KmsKeyId           *string
}

func (h *Handler) updateSecret(body []byte, now time.Time) (any, *Error) {
	var in updateSecretInput
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := checkSecretID(in.SecretId); e != nil {
		return nil, e
	}
	if e := checkValue(in.SecretString, in.SecretBinary, false); e != nil {
		return nil, e
	}
	if e := checkToken(in.ClientRequestToken); e != nil {
		return nil, e
	}
	s, e := h.live(in.SecretId, now)
	if e != nil {
		return nil, e
	}
	var v *version
	if in.SecretString != nil || in.SecretBinary != nil {
		if v, e = s.addVersion(in.ClientRequestToken, in.SecretString, in.SecretBinary, []string{stageCurrent}, now); e != nil {
			return nil, e
		}
	}
	if in.Description != nil {
		s.description = *in.Description
		s.changed = now
	}
	if in.KmsKeyId != nil {
		s.kmsKeyID = *in.KmsKeyId
		s.changed = now
	}
	return ref(s, v), nil
}

type deleteSecretInput struct {
	SecretId                   *string
	RecoveryWindowInDays       *int64
	ForceDeleteWithoutRecovery *bool
}

type deleteSecretOutput struct {
	ARN          *string `json:",omitempty"`
	Name         *string `json:",omitempty"`
	DeletionDate epoch
}

func (h *Handler) deleteSecret(body []byte, now time.Time) (any, *Error) {
	var in deleteSecretInput
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := checkSecretID(in.SecretId); e != nil {
		return nil, e
	}
	force := aws.ToBool(in.ForceDeleteWithoutRecovery)
	if force && in.RecoveryWindowInDays != nil {
		return nil, invalidParam(msgForceAndWindow)
	}
	days := int64(30)
	if in.RecoveryWindowInDays != nil {
		days = *in.RecoveryWindowInDays
		if days < 7 || days > 30 {
			return nil, invalidParam(msgWindowRange)
		}
	}
	s := h.lookup(*in.SecretId, now)
	if s == nil {
		if !force {
			return nil, notFound()
		}
		// Forcibly deleting a missing secret succeeds.
		out := deleteSecretOutput{DeletionDate: epoch(now)}
		if strings.HasPrefix(*in.SecretId, arnPrefix) {
			out.ARN = in.SecretId
		} else {
			out.Name = in.SecretId
		}
		return out, nil
	}
	if !s.deleted.IsZero() && !force {
		return nil, invalidRequest(msgMarkedDeleted)
	}
	out := deleteSecretOutput{ARN: aws.String(s.arn), Name: aws.String(s.name)}
	switch {
	case force && h.forceDeleteDelay <= 0:
		delete(h.secrets, s.name)
		out.DeletionDate = epoch(now)
	case force:
		if s.deleted.IsZero() {
			s.deleted = now
		}
		s.forced = true
		s.purgeAt = now.Add(h.forceDeleteDelay)
		out.DeletionDate = epoch(now)
	default:
		s.deleted = now
		s.purgeAt = now.Add(time.Duration(days) * 24 * time.Hour)
		out.DeletionDate = epoch(s.purgeAt)
	}
	return out, nil
}

type restoreSecretInput struct {
	SecretId *string
}

func (h *Handler) restoreSecret(body []byte, now time.Time) (any, *Error) {
	var in restoreSecretInput
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := checkSecretID(in.SecretId); e != nil {
		return nil, e
	}
	s := h.lookup(*in.SecretId, now)
	if s == nil {
		return nil, notFound()
	}
	if s.forced {
		return nil, invalidRequest(msgDeleted)
	}
	s.deleted, s.purgeAt = time.Time{}, time.Time{}
	return ref(s, nil), nil
}

type describeSecretInput struct {
	SecretId *string
}

type describeSecretOutput struct {
	ARN                string
	Name               string
	Description        *string `json:",omitempty"`
	KmsKeyId           *string `json:",omitempty"`
	Tags               []tag   `json:",omitempty"`
	VersionIdsToStages map[string][]string
	CreatedDate        epoch
	LastChangedDate    epoch
	LastAccessedDate   *epoch `json:",omitempty"`
	DeletedDate        *epoch `json:",omitempty"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func describe(s *secret) describeSecretOutput {
	return describeSecretOutput{
		ARN:                s.arn,
		Name:               s.name,
		Description:        optional(s.description),
		KmsKeyId:           optional(s.kmsKeyID),
		Tags:               slices.Clone(s.tags),
		VersionIdsToStages: s.stagesByVersion(),
		CreatedDate:        epoch(s.created),
		LastChangedDate:    epoch(s.changed),
		LastAccessedDate:   epochPtr(s.accessed),
		DeletedDate:        epochPtr(s.deleted),
	}
}

func (h *Handler) describeSecret(body []byte, now time.Time) (any, *Error) {
	var in describeSecretInput
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := checkSecretID(in.SecretId); e != nil {
		return nil, e
	}
	s := h.lookup(*in.SecretId, now)
	if s == nil {
		return nil, notFound()
	}
	return describe(s), nil
}

type listSecretsInput struct {
	MaxResults             *int
	NextToken              *string
	IncludePlannedDeletion *bool
	SortOrder              *string
	Filters                []struct {
		Key    string
		Values []string
	}
}

type listedSecret struct {
	ARN                    string
	Name                   string
	Description            *string `json:",omitempty"`
	KmsKeyId               *string `json:",omitempty"`
	Tags                   []tag   `json:",omitempty"`
	SecretVersionsToStages map[string][]string
	CreatedDate            epoch
	LastChangedDate        epoch
	LastAccessedDate       *epoch `json:",omitempty"`
	DeletedDate            *epoch `json:",omitempty"`
}

type listSecretsOutput struct {
	SecretList []listedSecret
	NextToken  *string `json:",omitempty"`
}

// listSecrets lists by creation date, oldest first (newest first with
// SortOrder "desc"). Filters match prefixes of the name, description, tag
// keys or tag values ("all" matches any of them).
func (h *Handler) listSecrets(body []byte, now time.Time) (any, *Error) {
	var in listSecretsInput
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	limit := 100
	if in.MaxResults != nil {
		limit = *in.MaxResults
		if limit < 1 || limit > 100 {
			return nil, validation("maxResults", "Member must have value between 1 and 100")
		}
	}
	start := 0
	if in.NextToken != nil {
		if _, err := fmt.Sscanf(*in.NextToken, "offset-%d", &start); err != nil || start < 0 {
			return nil, clientError("InvalidNextTokenException", "The NextToken value is invalid.")
		}
	}
	for _, f := range in.Filters {
		switch f.Key {
		case "name", "description", "tag-key", "tag-value", "all":
		default:
			return nil, validation("filters.key", "Member must satisfy enum value set: [all, name, tag-key, description, tag-value, primary-region, owning-service]")
		}
	}

	var all []*secret
	for _, s := range h.secrets {
		if h.lookup(s.name, now) == nil {
			continue // purged
		}
		if !s.deleted.IsZero() && !aws.ToBool(in.IncludePlannedDeletion) {
			continue
		}
		if matchesFilters(s, in.Filters) {
			all = append(all, s)
		}
	}
	slices.SortFunc(all, func(a, b *secret) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	if aws.ToString(in.SortOrder) == "desc" {
		slices.Reverse(all)
	}

	var out listSecretsOutput
	out.SecretList = []listedSecret{}
	for i := start; i < len(all) && len(out.SecretList) < limit; i++ {
		d := describe(all[i])
		out.SecretList = append(out.SecretList, listedSecret{
			ARN: d.ARN, Name: d.Name, Description: d.Description, KmsKeyId: d.KmsKeyId, Tags: d.Tags,
			SecretVersionsToStages: d.VersionIdsToStages,
			CreatedDate:            d.CreatedDate, LastChangedDate: d.LastChangedDate,
			LastAccessedDate: d.LastAccessedDate, DeletedDate: d.DeletedDate,
		})
	}
	if next := start + len(out.SecretList); next < len(all) {
		out.NextToken = aws.String(fmt.Sprintf("offset-%d", next))
	}
	return out, nil
}

func matchesFilters(s *secret, filters []struct {
	Key    string
	Values []string
}) bool {
	for _, f := range filters {
		var fields []string
		if f.Key == "name" || f.Key == "all" {
			fields = append(fields, s.name)
		}
		if f.Key == "description" || f.Key == "all" {
			fields = append(fields, s.description)
		}
		for _, t := range s.tags {
			if f.Key == "tag-key" || f.Key == "all" {
				fields = append(fields, aws.ToString(t.Key))
			}
			if f.Key == "tag-value" || f.Key == "all" {
				fields = append(fields, aws.ToString(t.Value))
			}
		}
		if !slices.ContainsFunc(f.Values, func(v string) bool {
			return slices.ContainsFunc(fields, func(x string) bool { return strings.HasPrefix(x, v) })
		}) {
			return false
		}
	}
	return true
}

func randomString(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphanumerics[randomIndex(len(alphanumerics))]
	}
	return string(b)
}

func randomIndex(n int) int {
	var b [1]byte
	for {
		_, _ = rand.Read(b[:])
		if int(b[0]) < 256-256%n {
			return int(b[0]) % n
		}
	}
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Server is a [Handler] listening on a loopback port.
type Server struct {
	*Handler

	// URL is the endpoint, e.g. "http://127.0.0.1:41234"; use it as the
	// client's BaseEndpoint.
	URL string

	srv *httptest.Server
}

// NewServer starts a Secrets Manager on a loopback port. Close it when done.
func NewServer() *Server {
	h := NewHandler()
	srv := httptest.NewServer(h)
	return &Server{Handler: h, URL: srv.URL, srv: srv}
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Client returns a real aws-sdk-go-v2 Secrets Manager client that talks to
// the server: region us-east-1, static test credentials, and at most three
// attempts with millisecond back-off (so retry tests stay fast). It reads
// nothing from the environment or shared config files.
func (s *Server) Client() *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		BaseEndpoint: aws.String(s.URL),
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSECRETSMANAGERTEST", "secretsmanagertest-secret-key", ""),
		HTTPClient:   s.srv.Client(),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.BaseDelay = time.Millisecond
			o.MaxBackoff = 5 * time.Millisecond
			o.RateLimiter = ratelimit.None
		}),
	})
}
