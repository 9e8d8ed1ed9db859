package votes

import (
	"context"
	"fmt"

	"github.com/ejplatform/ej-mautic/pkg/failure"
	"github.com/ejplatform/ej-mautic/pkg/mautic"
)

// joinSegment puts the contacts this run just created in the
// conversation's Mautic segment (made when the connection was connected:
// connection.Segment), in one call (mautic.Client.AddToSegment sends 200
// ids a call): the segment's tag filter would add them only when Mautic's
// segment job runs. Adding a member again is harmless. A failure never
// fails the votes, whose contacts exist and carry the conversation's tag:
// it is logged and noted as the connection's last_error
// (segment_add_failed) unless a worse problem was noted already.
func (r *run) joinSegment(ctx context.Context, created []ContactRecord) {
	seg := r.c.Segment
	if seg == nil || seg.ID <= 0 || len(created) == 0 || r.api == nil || r.api.client == nil {
		return
	}
	ids := make([]int, 0, len(created))
	for _, rec := range created {
		if rec.ContactID > 0 {
			ids = append(ids, rec.ContactID)
		}
	}
	if len(ids) == 0 {
		return
	}
	err := r.api.call(ctx, func() error { return r.api.client.AddToSegment(ctx, seg.ID, ids) })
	if err == nil {
		return
	}
	r.p.opts.Logger.WarnContext(ctx, "new contacts not added to the conversation's segment", "conversation_id", r.conv,
		"segment_id", seg.ID, "contacts", len(ids), "kind", mautic.KindOf(err).String(), "err", errText(err))
	if r.lastErr == nil {
		r.noteError(failure.SegmentAddFailed, failure.SegmentAddFailed.Message(fmt.Sprintf("segment %d (%s): %s", seg.ID, seg.Alias, errText(err))))
	}
}
