package connect

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/localstore"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestSegmentLeaseOutlivesSlowMautic: the holder of the segment lease
// renews it while Mautic takes longer than the lease to answer, so that
// the others wait rather than make a second segment.
func TestSegmentLeaseOutlivesSlowMautic(t *testing.T) {
	ttl := segmentLeaseTTL
	segmentLeaseTTL = 150 * time.Millisecond
	t.Cleanup(func() { segmentLeaseTTL = ttl })

	for _, store := range []string{"localstore", "process"} {
		t.Run(store, func(t *testing.T) {
			sim := mautictest.NewServer(mautictest.Options{})
			t.Cleanup(sim.Close)
			st, err := localstore.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			// Making a segment takes Mautic well over the lease; looking
			// one up is quick.
			slowCreate := roundTrip(func(r *http.Request) (*http.Response, error) {
				if r.Method == http.MethodPost && r.URL.Path == "/api/segments/new" {
					time.Sleep(4 * segmentLeaseTTL)
				}
				return http.DefaultTransport.RoundTrip(r)
			})
			opts := Options{Meta: st, Secrets: st, HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: slowCreate}, PublicBaseURL: "https://ej-mautic.example.org"}
			if store == "process" {
				opts.Leases = &memLeases{}
			}
			s, err := NewService(opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			id, secret := sim.CreateClient(nil, true)
			tok, err := mautic.ClientCredentials(ctx, s.hc, sim.URL, id, secret)
			if err != nil {
				t.Fatal(err)
			}
			mc, err := s.staticClient(sim.URL, tok)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]connection.Connection, 3)
			var wg sync.WaitGroup
			for i := range got {
				got[i] = connection.Connection{ConversationID: "42"}
				wg.Go(func() { s.ensureSegment(ctx, mc, &got[i], nil) })
			}
			wg.Wait()
			if segs := sim.Segments(); len(segs) != 1 {
				t.Fatalf("segments = %+v, want 1", segs)
			}
			for i, c := range got {
				if c.Segment == nil || c.SegmentError != nil || *c.Segment != *got[0].Segment {
					t.Errorf("caller %d: segment %+v, error %+v; want the one segment", i, c.Segment, c.SegmentError)
				}
			}
		})
	}
}
