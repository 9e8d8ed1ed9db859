package benchmark

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/localapp"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// Backend is every store a local server uses (localapp.Stores);
// localstore.Store is one.
type Backend = localapp.Stores

// Op is what one store method did.
type Op struct {
	Write bool  `json:"write"`
	Calls int64 `json:"calls"`
	// Items is how many ids or records the calls carried (participant
	// ids for Contacts, records for SaveContacts; 1 for single-item
	// methods).
	Items int64 `json:"items"`
}

// Counts counts store calls by method, and adds up the connection
// counters the processor records (AddStats) by conversation. It is safe
// for concurrent use.
type Counts struct {
	mu    sync.Mutex
	ops   map[string]Op
	stats map[string]connection.Stats
}

// isWrite reports whether a store method changes the store; the others
// only read.
func isWrite(method string) bool {
	switch method {
	case "Contacts", "Parked", "GetConnection", "GetSecret", "TakeState":
		return false
	}
	return true
}

func (c *Counts) add(method string, items int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ops == nil {
		c.ops = map[string]Op{}
	}
	o := c.ops[method]
	o.Write = isWrite(method)
	o.Calls++
	o.Items += int64(items)
	c.ops[method] = o
}

// Snapshot returns the counts by method.
func (c *Counts) Snapshot() map[string]Op {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.ops)
}

// ConnectionStats returns the counters recorded through AddStats since
// the last Reset, summed by conversation (VotesSynced, ContactsCreated and
// VotesSkipped).
func (c *Counts) ConnectionStats() map[string]connection.Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.stats)
}

func (c *Counts) addStats(conv string, s connection.Stats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stats == nil {
		c.stats = map[string]connection.Stats{}
	}
	t := c.stats[conv]
	t.VotesSynced += s.VotesSynced
	t.ContactsCreated += s.ContactsCreated
	t.VotesSkipped += s.VotesSkipped
	c.stats[conv] = t
}

// Reset zeroes the counts.
func (c *Counts) Reset() {
	c.mu.Lock()
	c.ops, c.stats = nil, nil
	c.mu.Unlock()
}

// Counting decorates a Backend, counting each call in Counts.
type Counting struct {
	Backend Backend
	Counts  *Counts
}

var _ Backend = (*Counting)(nil)

// BeginCreations counts a write.
func (c *Counting) BeginCreations(ctx context.Context, conversationID, owner string, participantIDs []string, now, leaseUntil time.Time) ([]string, time.Time, bool, error) {
	c.Counts.add("BeginCreations", 1)
	return c.Backend.BeginCreations(ctx, conversationID, owner, participantIDs, now, leaseUntil)
}

// EndCreations counts a write.
func (c *Counting) EndCreations(ctx context.Context, conversationID, owner string) error {
	c.Counts.add("EndCreations", 1)
	return c.Backend.EndCreations(ctx, conversationID, owner)
}

// Contacts counts a read.
func (c *Counting) Contacts(ctx context.Context, conversationID string, participantIDs []string) (map[string]votes.ContactRecord, error) {
	c.Counts.add("Contacts", len(participantIDs))
	return c.Backend.Contacts(ctx, conversationID, participantIDs)
}

// Reserve counts a write.
func (c *Counting) Reserve(ctx context.Context, conversationID, participantID, owner string, now, leaseUntil time.Time) (votes.ContactRecord, bool, error) {
	c.Counts.add("Reserve", 1)
	return c.Backend.Reserve(ctx, conversationID, participantID, owner, now, leaseUntil)
}

// SaveContacts counts a write.
func (c *Counting) SaveContacts(ctx context.Context, conversationID string, recs []votes.ContactRecord) error {
	c.Counts.add("SaveContacts", len(recs))
	return c.Backend.SaveContacts(ctx, conversationID, recs)
}

// ReleaseReservation counts a write.
func (c *Counting) ReleaseReservation(ctx context.Context, conversationID, participantID, owner string) error {
	c.Counts.add("ReleaseReservation", 1)
	return c.Backend.ReleaseReservation(ctx, conversationID, participantID, owner)
}

// Park counts a write.
func (c *Counting) Park(ctx context.Context, conversationID string, vs []votes.ParkedVote) error {
	c.Counts.add("Park", len(vs))
	return c.Backend.Park(ctx, conversationID, vs)
}

// Parked counts a read.
func (c *Counting) Parked(ctx context.Context, conversationID string, limit int) ([]votes.ParkedVote, error) {
	c.Counts.add("Parked", 1)
	return c.Backend.Parked(ctx, conversationID, limit)
}

// Unpark counts a write.
func (c *Counting) Unpark(ctx context.Context, conversationID string, voteIDs []string) error {
	c.Counts.add("Unpark", len(voteIDs))
	return c.Backend.Unpark(ctx, conversationID, voteIDs)
}

// GetConnection counts a read.
func (c *Counting) GetConnection(ctx context.Context, conversationID string) (connection.Connection, error) {
	c.Counts.add("GetConnection", 1)
	return c.Backend.GetConnection(ctx, conversationID)
}

// UpdateStatus counts a write.
func (c *Counting) UpdateStatus(ctx context.Context, conversationID string, status connection.Status, lastErr *connection.LastError) error {
	c.Counts.add("UpdateStatus", 1)
	return c.Backend.UpdateStatus(ctx, conversationID, status, lastErr)
}

// AddStats counts a write.
func (c *Counting) AddStats(ctx context.Context, conversationID string, s connection.Stats) error {
	c.Counts.add("AddStats", 1)
	err := c.Backend.AddStats(ctx, conversationID, s)
	if err == nil {
		c.Counts.addStats(conversationID, s)
	}
	return err
}

// GetSecret counts a read (a Secrets Manager read on AWS).
func (c *Counting) GetSecret(ctx context.Context, conversationID string) (connection.Secret, error) {
	c.Counts.add("GetSecret", 1)
	return c.Backend.GetSecret(ctx, conversationID)
}

// PutSecret counts a write.
func (c *Counting) PutSecret(ctx context.Context, conversationID string, s connection.Secret) error {
	c.Counts.add("PutSecret", 1)
	return c.Backend.PutSecret(ctx, conversationID, s)
}

// AcquireLease counts a write.
func (c *Counting) AcquireLease(ctx context.Context, key, owner string, now, until time.Time) (bool, error) {
	c.Counts.add("AcquireLease", 1)
	return c.Backend.AcquireLease(ctx, key, owner, now, until)
}

// ReleaseLease counts a write.
func (c *Counting) ReleaseLease(ctx context.Context, key, owner string) error {
	c.Counts.add("ReleaseLease", 1)
	return c.Backend.ReleaseLease(ctx, key, owner)
}

// MarkTokenRefreshed counts a write.
func (c *Counting) MarkTokenRefreshed(ctx context.Context, conversationID string, at time.Time) error {
	c.Counts.add("MarkTokenRefreshed", 1)
	return c.Backend.MarkTokenRefreshed(ctx, conversationID, at)
}

// PutConnection counts a write.
func (c *Counting) PutConnection(ctx context.Context, conn connection.Connection) error {
	c.Counts.add("PutConnection", 1)
	return c.Backend.PutConnection(ctx, conn)
}

// DeleteConnection counts a write.
func (c *Counting) DeleteConnection(ctx context.Context, conversationID string) error {
	c.Counts.add("DeleteConnection", 1)
	return c.Backend.DeleteConnection(ctx, conversationID)
}

// PutState counts a write.
func (c *Counting) PutState(ctx context.Context, st connection.PendingState) error {
	c.Counts.add("PutState", 1)
	return c.Backend.PutState(ctx, st)
}

// TakeState counts a read (it deletes what it returns).
func (c *Counting) TakeState(ctx context.Context, state string, now time.Time) (connection.PendingState, error) {
	c.Counts.add("TakeState", 1)
	return c.Backend.TakeState(ctx, state, now)
}

// DeleteSecret counts a write.
func (c *Counting) DeleteSecret(ctx context.Context, conversationID string) error {
	c.Counts.add("DeleteSecret", 1)
	return c.Backend.DeleteSecret(ctx, conversationID)
}
