package localstore

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connection"
)

const visibility = 30 * time.Second

func bodies(names ...string) [][]byte {
	out := make([][]byte, len(names))
	for i, n := range names {
		out[i] = []byte(n)
	}
	return out
}

func enqueue(t *testing.T, s *Store, names ...string) {
	t.Helper()
	if err := s.Enqueue(t.Context(), bodies(names...)); err != nil {
		t.Fatal(err)
	}
}

func receive(t *testing.T, s *Store, max int, now time.Time) []QueueMessage {
	t.Helper()
	msgs, err := s.Receive(t.Context(), max, visibility, now)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func bodiesOf(msgs []QueueMessage) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, string(m.Body))
	}
	return out
}

func idsOf(msgs []QueueMessage) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

func checkStats(t *testing.T, s *Store, wantVisible, wantInFlight, wantDead int) {
	t.Helper()
	v, f, d, err := s.QueueStats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v != wantVisible || f != wantInFlight || d != wantDead {
		t.Errorf("QueueStats = %d visible, %d in flight, %d dead; want %d, %d, %d", v, f, d, wantVisible, wantInFlight, wantDead)
	}
}

func TestQueueOrder(t *testing.T) {
	s := newStore(t)
	enqueue(t, s, "a", "b", "c")
	enqueue(t, s, "d", "e")

	msgs := receive(t, s, 10, t0)
	if got, want := bodiesOf(msgs), []string{"a", "b", "c", "d", "e"}; !slices.Equal(got, want) {
		t.Fatalf("bodies = %q, want %q", got, want)
	}
	prev := uint64(0)
	for _, m := range msgs {
		id, err := strconv.ParseUint(m.ID, 10, 64)
		if err != nil || id <= prev {
			t.Errorf("id %q after %d: want increasing numbers", m.ID, prev)
		}
		prev = id
		if m.ReceiveCount != 1 || !m.FirstEnqueued.Equal(t0) {
			t.Errorf("message %s: ReceiveCount %d, FirstEnqueued %v; want 1, %v", m.ID, m.ReceiveCount, m.FirstEnqueued, t0)
		}
	}
}

func TestQueueReceiveMax(t *testing.T) {
	s := newStore(t)
	enqueue(t, s, "a", "b", "c", "d", "e")
	tests := []struct {
		name string
		want []string
	}{
		{name: "first two", want: []string{"a", "b"}},
		{name: "next two", want: []string{"c", "d"}},
		{name: "the last", want: []string{"e"}},
		{name: "none left", want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bodiesOf(receive(t, s, 2, t0)); !slices.Equal(got, tt.want) {
				t.Errorf("bodies = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestQueueVisibility(t *testing.T) {
	tests := []struct {
		name      string
		at        time.Time
		wantCount int // 0: nothing received
	}{
		{name: "hidden during the timeout", at: t0.Add(visibility - time.Nanosecond)},
		{name: "visible again when it lapses", at: t0.Add(visibility), wantCount: 2},
		{name: "visible long after", at: t0.Add(24 * time.Hour), wantCount: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			enqueue(t, s, "a")
			first := receive(t, s, 10, t0)
			got := receive(t, s, 10, tt.at)
			if tt.wantCount == 0 {
				if len(got) != 0 {
					t.Errorf("received %q, want nothing", bodiesOf(got))
				}
				return
			}
			want := first[0]
			want.ReceiveCount = tt.wantCount
			if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
				t.Errorf("received %+v, want [%+v]", got, want)
			}
		})
	}

	t.Run("zero visibility timeout", func(t *testing.T) {
		s := newStore(t)
		enqueue(t, s, "a")
		for i := 1; i <= 3; i++ {
			msgs, err := s.Receive(t.Context(), 10, 0, t0)
			if err != nil || len(msgs) != 1 || msgs[0].ReceiveCount != i {
				t.Errorf("receive %d = %+v, %v; want the message with ReceiveCount %d", i, msgs, err, i)
			}
		}
	})
}

// TestQueueRedeliveryAfterCrash: a consumer receives, then the process dies
// before Delete. After restart the message stays hidden for the rest of its
// timeout, then comes back.
func TestQueueRedeliveryAfterCrash(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	enqueue(t, s, "vote-1")
	got := receive(t, s, 10, t0)
	if len(got) != 1 {
		t.Fatalf("received %d messages, want 1", len(got))
	}
	s.Close() // the crash: no Delete

	s = openStore(t, dir)
	tests := []struct {
		name      string
		at        time.Time
		wantCount int
	}{
		{name: "still hidden after restart", at: t0.Add(visibility / 2)},
		{name: "redelivered after the timeout", at: t0.Add(visibility), wantCount: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := receive(t, s, 10, tt.at)
			if tt.wantCount == 0 {
				if len(msgs) != 0 {
					t.Fatalf("received %q, want nothing", bodiesOf(msgs))
				}
				return
			}
			if len(msgs) != 1 || msgs[0].ID != got[0].ID || string(msgs[0].Body) != "vote-1" || msgs[0].ReceiveCount != tt.wantCount {
				t.Fatalf("received %+v, want message %s (vote-1) with ReceiveCount %d", msgs, got[0].ID, tt.wantCount)
			}
			if err := s.Delete(t.Context(), msgs[0].ID); err != nil {
				t.Fatal(err)
			}
		})
	}
	if msgs := receive(t, s, 10, t0.Add(time.Hour)); len(msgs) != 0 {
		t.Errorf("after Delete received %q, want nothing", bodiesOf(msgs))
	}
	checkStats(t, s, 0, 0, 0)
}

func TestQueueSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	enqueue(t, s, "a", "b", "c")
	s.Close()

	s = openStore(t, dir)
	enqueue(t, s, "d")
	msgs := receive(t, s, 10, t0)
	if got, want := bodiesOf(msgs), []string{"a", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Fatalf("bodies after restart = %q, want %q", got, want)
	}
	if got, want := idsOf(msgs), []string{"1", "2", "3", "4"}; !slices.Equal(got, want) {
		t.Errorf("ids = %q, want %q (the sequence continues across restarts)", got, want)
	}
}

func TestQueueDelete(t *testing.T) {
	tests := []struct {
		name     string
		ids      func(received []QueueMessage) []string
		wantErr  bool
		wantLeft []string // bodies received after the visibility timeout
	}{
		{name: "one", ids: func(r []QueueMessage) []string { return []string{r[0].ID} }, wantLeft: []string{"b", "c"}},
		{name: "several", ids: func(r []QueueMessage) []string { return []string{r[0].ID, r[2].ID} }, wantLeft: []string{"b"}},
		{name: "twice", ids: func(r []QueueMessage) []string { return []string{r[1].ID, r[1].ID} }, wantLeft: []string{"a", "c"}},
		{name: "unknown id ignored", ids: func(r []QueueMessage) []string { return []string{"999", r[1].ID} }, wantLeft: []string{"a", "c"}},
		{name: "none", ids: func(r []QueueMessage) []string { return nil }, wantLeft: []string{"a", "b", "c"}},
		{name: "invalid id refuses all", ids: func(r []QueueMessage) []string { return []string{r[0].ID, "x"} }, wantErr: true, wantLeft: []string{"a", "b", "c"}},
		{name: "zero id refused", ids: func(r []QueueMessage) []string { return []string{"0"} }, wantErr: true, wantLeft: []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			enqueue(t, s, "a", "b", "c")
			received := receive(t, s, 10, t0)
			err := s.Delete(t.Context(), tt.ids(received)...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Delete error = %v, want error: %t", err, tt.wantErr)
			}
			if got := bodiesOf(receive(t, s, 10, t0.Add(visibility))); !slices.Equal(got, tt.wantLeft) {
				t.Errorf("left = %q, want %q", got, tt.wantLeft)
			}
		})
	}
}

// receiveCheck: receiving at at returns the bodies want.
type receiveCheck struct {
	at   time.Time
	want []string
}

func TestQueueRelease(t *testing.T) {
	tests := []struct {
		name      string
		visibleAt time.Time
		checks    []receiveCheck
	}{
		{
			name:      "now: retry at once",
			visibleAt: t0,
			checks:    []receiveCheck{{at: t0, want: []string{"a"}}},
		},
		{
			name:      "zero time: retry at once",
			visibleAt: time.Time{},
			checks:    []receiveCheck{{at: t0, want: []string{"a"}}},
		},
		{
			name:      "later: backoff beyond the visibility timeout",
			visibleAt: t0.Add(time.Hour),
			checks: []receiveCheck{
				{at: t0.Add(visibility), want: []string{}},
				{at: t0.Add(time.Hour - time.Nanosecond), want: []string{}},
				{at: t0.Add(time.Hour), want: []string{"a"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			enqueue(t, s, "a")
			msgs := receive(t, s, 10, t0)
			if err := s.Release(t.Context(), msgs[0].ID, tt.visibleAt); err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.checks {
				if got := bodiesOf(receive(t, s, 10, c.at)); !slices.Equal(got, c.want) {
					t.Errorf("at %v received %q, want %q", c.at, got, c.want)
				}
			}
		})
	}

	t.Run("errors", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if err := s.Release(ctx, "7", t0); !errors.Is(err, connection.ErrNotFound) {
			t.Errorf("Release of a missing message: %v, want ErrNotFound", err)
		}
		if err := s.Release(ctx, "seven", t0); err == nil || errors.Is(err, connection.ErrNotFound) {
			t.Errorf("Release of an invalid id: %v, want an invalid id error", err)
		}
	})
}

func TestQueueDeadLetterAndRedrive(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := t.Context()
	enqueue(t, s, "good", "bad")
	received := receive(t, s, 10, t0)
	bad := received[1]
	const reason = "unknown message version 2"
	s.now = func() time.Time { return t0.Add(time.Second) }
	if err := s.DeadLetter(ctx, bad.ID, reason); err != nil {
		t.Fatal(err)
	}
	checkStats(t, s, 0, 1, 1)

	t.Run("no longer received", func(t *testing.T) {
		if got, want := bodiesOf(receive(t, s, 10, t0.Add(visibility))), []string{"good"}; !slices.Equal(got, want) {
			t.Errorf("received %q, want %q", got, want)
		}
	})
	s.Close()
	s = openStore(t, dir)
	t.Run("listed, across a restart", func(t *testing.T) {
		got, err := s.DeadLetters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []DeadLetter{{QueueMessage: bad, Reason: reason, DeadLetteredAt: t0.Add(time.Second)}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("DeadLetters\n got %+v\nwant %+v", got, want)
		}
	})
	t.Run("a redrive skips what can never succeed", func(t *testing.T) {
		// "bad" is no vote message: malformed, whatever the reason says.
		for _, dry := range []bool{true, false} {
			res, err := s.Redrive(ctx, RedriveOptions{DryRun: dry})
			if err != nil || len(res.Moved) != 0 || !reflect.DeepEqual(res.Skipped, map[string]int{"malformed: " + reason: 1}) {
				t.Fatalf("Redrive(dry run %v) = %+v, %v; want bad skipped as malformed", dry, res, err)
			}
		}
		if got, err := s.DeadLetters(ctx); err != nil || len(got) != 1 {
			t.Errorf("DeadLetters after a skipping redrive = %+v, %v; want bad still there", got, err)
		}
	})
	t.Run("redrive", func(t *testing.T) {
		res, err := s.Redrive(ctx, RedriveOptions{DryRun: true, IncludeMalformed: true})
		if err != nil || !reflect.DeepEqual(res.Moved, map[string]int{reason: 1}) {
			t.Fatalf("dry run = %+v, %v; want bad", res, err)
		}
		if got, err := s.DeadLetters(ctx); err != nil || len(got) != 1 {
			t.Errorf("DeadLetters after a dry run = %+v, %v; want bad still there", got, err)
		}
		res, err = s.Redrive(ctx, RedriveOptions{IncludeMalformed: true})
		if err != nil || !reflect.DeepEqual(res.Moved, map[string]int{reason: 1}) || len(res.Skipped) != 0 {
			t.Fatalf("Redrive = %+v, %v; want bad moved", res, err)
		}
		if got, err := s.DeadLetters(ctx); err != nil || len(got) != 0 {
			t.Errorf("DeadLetters after redrive = %+v, %v; want none", got, err)
		}
		msgs := receive(t, s, 10, t0.Add(visibility)) // "good" is hidden again until 2×visibility
		want := bad
		want.ReceiveCount = 1               // reset by the redrive, then received
		want.FirstSeen = t0.Add(visibility) // a fresh start for the retry horizon too
		want.Redrives = 1
		if len(msgs) != 1 || !reflect.DeepEqual(msgs[0], want) {
			t.Errorf("received after redrive %+v, want [%+v]", msgs, want)
		}
		if res, err := s.Redrive(ctx, RedriveOptions{IncludeMalformed: true}); err != nil || len(res.Moved)+len(res.Skipped) != 0 {
			t.Errorf("second Redrive = %+v, %v; want nothing", res, err)
		}
	})
	t.Run("dead-letter a missing message", func(t *testing.T) {
		if err := s.DeadLetter(ctx, "999", reason); !errors.Is(err, connection.ErrNotFound) {
			t.Errorf("DeadLetter = %v, want ErrNotFound", err)
		}
	})
}

func TestQueueStats(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	enqueue(t, s, "a", "b", "c", "d", "e")
	msgs := receive(t, s, 3, t0) // a, b, c hidden until t0+visibility
	if err := s.DeadLetter(ctx, msgs[0].ID, "bad"); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, msgs[1].ID, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name              string
		now               time.Time
		visible, inFlight int
		dead              int
	}{
		{name: "at receive", now: t0, visible: 2, inFlight: 2, dead: 1},
		{name: "after the visibility timeout", now: t0.Add(visibility), visible: 3, inFlight: 1, dead: 1},
		{name: "after the release time", now: t0.Add(time.Hour), visible: 4, inFlight: 0, dead: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.now = func() time.Time { return tt.now }
			checkStats(t, s, tt.visible, tt.inFlight, tt.dead)
		})
	}
}

func TestQueueConcurrentReceivers(t *testing.T) {
	const messages, receivers = 200, 8
	s := newStore(t)
	names := make([]string, messages)
	for i := range names {
		names[i] = fmt.Sprintf("m%03d", i)
	}
	enqueue(t, s, names...)

	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range receivers {
		wg.Go(func() {
			for {
				msgs, err := s.Receive(t.Context(), 7, time.Hour, t0)
				if err != nil {
					t.Error(err)
					return
				}
				if len(msgs) == 0 {
					return
				}
				mu.Lock()
				for _, m := range msgs {
					seen[string(m.Body)]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != messages {
		t.Errorf("received %d distinct messages, want %d", len(seen), messages)
	}
	for body, n := range seen {
		if n != 1 {
			t.Errorf("%s received %d times, want once", body, n)
		}
	}
}

func TestQueueInvalidArguments(t *testing.T) {
	tests := []struct {
		name    string
		op      func(s *Store) error
		wantErr string
	}{
		{"Receive max 0", func(s *Store) error { _, err := s.Receive(t.Context(), 0, visibility, t0); return err }, "max is 0"},
		{"Receive negative visibility", func(s *Store) error { _, err := s.Receive(t.Context(), 1, -time.Second, t0); return err }, "negative visibility"},
		{"Enqueue an empty body", func(s *Store) error { return s.Enqueue(t.Context(), bodies("a", "")) }, "message 1 has an empty body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			err := tt.op(s)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
			checkStats(t, s, 0, 0, 0) // and nothing enqueued: a batch is all or nothing
		})
	}

	t.Run("Enqueue nothing", func(t *testing.T) {
		s := newStore(t)
		if err := s.Enqueue(t.Context(), nil); err != nil {
			t.Errorf("Enqueue(nil) = %v, want nil", err)
		}
	})
}

func BenchmarkQueueRoundTrip(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := b.Context()
	batch := make([][]byte, 10)
	for i := range batch {
		batch[i] = []byte(`{"version":1,"vote_id":"981234","conversation_id":"42","comment_id":"7","choice":"agree","voted_at":"2026-11-26T12:00:00Z","participant":{"id":"1001","phone":"61999998888"}}`)
	}
	now := time.Now()
	for b.Loop() {
		if err := s.Enqueue(ctx, batch); err != nil {
			b.Fatal(err)
		}
		msgs, err := s.Receive(ctx, len(batch), visibility, now)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Delete(ctx, idsOf(msgs)...); err != nil {
			b.Fatal(err)
		}
	}
}

func TestQueueReceiveLimit(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	enqueue(t, s, "crasher", "ok")
	at := t0
	for i := 1; i <= 3; i++ {
		msgs, err := s.ReceiveLimited(ctx, 10, visibility, at, 3)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"crasher"}
		if i == 1 {
			want = []string{"crasher", "ok"}
			if err := s.Delete(ctx, msgs[1].ID); err != nil {
				t.Fatal(err)
			}
		}
		if got := bodiesOf(msgs); !slices.Equal(got, want) {
			t.Fatalf("receive %d: %q, want %q", i, got, want)
		}
		if msgs[0].ReceiveCount != i || !msgs[0].FirstSeen.Equal(t0) {
			t.Errorf("receive %d: count %d first seen %s, want %d and %s", i, msgs[0].ReceiveCount, msgs[0].FirstSeen, i, t0)
		}
		// Never settled: its consumer died.
		at = at.Add(visibility)
	}
	msgs, err := s.ReceiveLimited(ctx, 10, visibility, at, 3)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("fourth receive = %q, %v; want nothing: the message is over the limit", bodiesOf(msgs), err)
	}
	checkStats(t, s, 0, 0, 1)
	dl, err := s.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 || string(dl[0].Body) != "crasher" || !strings.Contains(dl[0].Reason, "received 3 times") {
		t.Errorf("dead letters = %+v, want crasher with the receive limit as reason", dl)
	}
}

func TestQueueCarry(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	enqueue(t, s, "vote")
	first := receive(t, s, 10, t0)[0]
	for i := 2; i <= 4; i++ {
		if err := s.Release(ctx, first.ID, t0); err != nil {
			t.Fatal(err)
		}
		first = receive(t, s, 10, t0)[0]
	}
	if first.ReceiveCount != 4 {
		t.Fatalf("receive count %d, want 4", first.ReceiveCount)
	}
	s.now = func() time.Time { return t0.Add(time.Minute) }
	id, err := s.Carry(ctx, first.ID, t0.Add(10*time.Minute), 4, t0)
	if err != nil {
		t.Fatal(err)
	}
	if id == first.ID {
		t.Errorf("carried under the same id %s, want a fresh message", id)
	}
	checkStats(t, s, 0, 1, 0)
	if got := receive(t, s, 10, t0.Add(10*time.Minute-time.Second)); len(got) != 0 {
		t.Errorf("received %q before the carried message's delay", bodiesOf(got))
	}
	got := receive(t, s, 10, t0.Add(10*time.Minute))
	want := QueueMessage{ID: id, Body: []byte("vote"), ReceiveCount: 1, FirstEnqueued: t0.Add(time.Minute), Carried: 4, FirstSeen: t0}
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("received %+v, want [%+v]", got, want)
	}
	if _, err := s.Carry(ctx, first.ID, t0, 1, t0); !errors.Is(err, connection.ErrNotFound) {
		t.Errorf("Carry of the replaced message = %v, want ErrNotFound", err)
	}
}
