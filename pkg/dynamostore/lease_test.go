package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ejplatform/ej-mautic/pkg/connection"
)

func TestLeases(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const a, b = "proc-a", "proc-b"
	const hold = 30 * time.Second
	type step struct {
		release bool          // ReleaseLease instead of AcquireLease
		owner   string        //
		at      time.Duration // now is t0+at; the lease is asked until now+hold
		want    bool          // AcquireLease's answer
	}
	acquire := func(owner string, at time.Duration, want bool) step {
		return step{owner: owner, at: at, want: want}
	}
	release := func(owner string) step { return step{release: true, owner: owner} }
	tests := []struct {
		name  string
		steps []step
	}{
		{"free lease is taken", []step{acquire(a, 0, true)}},
		{"held lease is exclusive", []step{acquire(a, 0, true), acquire(b, 10*time.Second, false)}},
		{"lease ending exactly now is still held", []step{acquire(a, 0, true), acquire(b, hold, false)}},
		{"ended lease is taken over", []step{acquire(a, 0, true), acquire(b, hold+time.Nanosecond, true), acquire(a, hold+time.Second, false)}},
		{"holder extends its lease", []step{
			acquire(a, 0, true),
			acquire(a, 20*time.Second, true), // now until 50 s
			acquire(b, 40*time.Second, false),
			acquire(b, 51*time.Second, true),
		}},
		{"release by another owner is a no-op", []step{acquire(a, 0, true), release(b), acquire(b, time.Second, false)}},
		{"release by the holder frees it", []step{acquire(a, 0, true), release(a), acquire(b, time.Second, true)}},
		{"release of a free lease is a no-op", []step{release(a), acquire(b, 0, true)}},
		{"former holder cannot release a lease taken over", []step{
			acquire(a, 0, true),
			acquire(b, hold+time.Second, true),
			release(a),
			acquire(a, hold+2*time.Second, false),
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "refresh#" + strconv.Itoa(i)
			for j, st := range tt.steps {
				if st.release {
					if err := s.ReleaseLease(ctx, key, st.owner); err != nil {
						t.Fatalf("step %d: ReleaseLease by %s: %v", j, st.owner, err)
					}
					continue
				}
				now := t0.Add(st.at)
				got, err := s.AcquireLease(ctx, key, st.owner, now, now.Add(hold))
				if err != nil {
					t.Fatalf("step %d: AcquireLease by %s: %v", j, st.owner, err)
				}
				if got != st.want {
					t.Errorf("step %d: AcquireLease by %s at +%s = %v, want %v", j, st.owner, st.at, got, st.want)
				}
			}
		})
	}
	t.Run("keys with # are apart", func(t *testing.T) {
		for _, key := range []string{"refresh#9", "refresh#9#x", "refresh#9#"} {
			if ok, err := s.AcquireLease(ctx, key, a, t0, t0.Add(hold)); err != nil || !ok {
				t.Errorf("AcquireLease %q = %v, %v; want true", key, ok, err)
			}
		}
	})
	t.Run("stored item", func(t *testing.T) {
		until := t0.Add(hold + 500*time.Millisecond)
		if ok, err := s.AcquireLease(ctx, "refresh#item", a, t0, until); err != nil || !ok {
			t.Fatalf("AcquireLease = %v, %v", ok, err)
		}
		item := rawItem(t, s, "lease#refresh#item", "lease")
		want := map[string]types.AttributeValue{
			"pk":          &types.AttributeValueMemberS{Value: "lease#refresh#item"},
			"sk":          &types.AttributeValueMemberS{Value: "lease"},
			"owner":       &types.AttributeValueMemberS{Value: a},
			"lease_until": &types.AttributeValueMemberS{Value: storedTime(until)},
			"ttl":         &types.AttributeValueMemberN{Value: strconv.FormatInt(until.Add(time.Hour).Unix()+1, 10)},
		}
		if !reflect.DeepEqual(item, want) {
			t.Errorf("lease item =\n%#v\nwant\n%#v", item, want)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, tt := range []struct {
			name, key, owner string
			now, until       time.Time
		}{
			{"empty key", "", a, t0, t0.Add(hold)},
			{"empty owner", "k", "", t0, t0.Add(hold)},
			{"until not after now", "k", a, t0, t0},
		} {
			if _, err := s.AcquireLease(ctx, tt.key, tt.owner, tt.now, tt.until); err == nil {
				t.Errorf("%s: no error", tt.name)
			}
		}
	})
}

func TestAcquireLeaseConcurrently(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const procs = 8
	for round := range 10 {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			key := fmt.Sprintf("refresh#%d", round)
			got := make([]bool, procs)
			errs := make([]error, procs)
			var wg sync.WaitGroup
			for i := range procs {
				wg.Go(func() {
					got[i], errs[i] = s.AcquireLease(ctx, key, fmt.Sprintf("proc-%d", i), t0, t0.Add(30*time.Second))
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			if n := len(slices.DeleteFunc(slices.Clone(got), func(ok bool) bool { return !ok })); n != 1 {
				t.Errorf("%d processes hold the lease, want exactly 1", n)
			}
		})
	}
}

func TestMarkTokenRefreshed(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 27, 8, 0, 0, 42, saoPaulo)
	tests := []struct {
		name    string
		put     bool
		at      time.Time
		wantErr error // nil, connection.ErrNotFound, or errAny
	}{
		{name: "sets the time, nothing else", put: true, at: at},
		{name: "missing connection", at: at, wantErr: connection.ErrNotFound},
		{name: "zero time is refused", put: true, wantErr: errAny},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fullConnection(strconv.Itoa(i))
			if tt.put {
				if err := s.PutConnection(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			err := s.MarkTokenRefreshed(ctx, c.ConversationID, tt.at)
			switch {
			case tt.wantErr == errAny && err == nil:
				t.Fatal("MarkTokenRefreshed: no error, want one")
			case tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("MarkTokenRefreshed: err = %v, want %v", err, tt.wantErr)
			}
			got, gerr := s.GetConnection(ctx, c.ConversationID)
			if !tt.put {
				if !errors.Is(gerr, connection.ErrNotFound) {
					t.Errorf("after MarkTokenRefreshed on a missing connection: GetConnection err = %v, want ErrNotFound (nothing created)", gerr)
				}
				return
			}
			if gerr != nil {
				t.Fatal(gerr)
			}
			want := inUTC(c)
			if err == nil {
				want.TokenRefreshedAt = tt.at.UTC()
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("connection =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// errAny stands for any error in a table.
var errAny = errors.New("any error")
