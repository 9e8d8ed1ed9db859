package benchmark

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

// newSim starts an in-process simulated Mautic for a test.
func newSim(t testing.TB) (*mautictest.Sim, string) {
	t.Helper()
	sim := mautictest.New(mautictest.Options{})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	return sim, srv.URL
}

// newEngine connects conversations to the simulator at url through the
// real OAuth flow and opens an engine on them.
func newEngine(t testing.TB, url string, conversations ...string) *Engine {
	t.Helper()
	dir := t.TempDir()
	if err := Connect(context.Background(), url, dir, conversations); err != nil {
		t.Fatal(err)
	}
	e, err := OpenEngine(dir, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}
