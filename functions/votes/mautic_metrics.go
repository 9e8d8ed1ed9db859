package main

import (
	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/metrics"
)

// emitMautic writes what one batch asked of Mautic: the requests (zero
// too), and the failed ones by kind, only the kinds seen (a kind never
// seen costs no metric). Lambda runs one batch at a time in a container,
// so the meter holds this batch's requests.
func (h *handler) emitMautic(u mautic.Usage) {
	now := h.now()
	_ = h.metrics.Emit(now, map[string]float64{metrics.MauticCalls: float64(u.Calls)})
	for kind, n := range u.Errors {
		_ = h.metrics.EmitWith(now, map[string]string{metrics.DimKind: kind.String()}, map[string]float64{metrics.MauticErrors: float64(n)})
	}
}
