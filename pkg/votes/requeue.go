package votes

import (
	"bytes"
	"context"
	"fmt"
)

// Sender puts message bodies on the vote queue.
type Sender interface {
	Send(ctx context.Context, bodies [][]byte) error
}

// RequeueBatch is how many parked votes go into one message body.
const RequeueBatch = 50

// Requeue sends a conversation's parked votes back to the queue, as JSON
// array bodies of up to RequeueBatch votes, and deletes them once sent. It
// runs after the author reconnects. A vote sent twice (a crash between send
// and delete) is harmless: processing is idempotent on vote id.
func Requeue(ctx context.Context, store Store, q Sender, conversationID string) (int, error) {
	total := 0
	for {
		parked, err := store.Parked(ctx, conversationID, 500)
		if err != nil {
			return total, fmt.Errorf("read parked votes of conversation %s: %w", conversationID, err)
		}
		if len(parked) == 0 {
			return total, nil
		}
		var bodies [][]byte
		ids := make([]string, 0, len(parked))
		for start := 0; start < len(parked); start += RequeueBatch {
			part := parked[start:min(start+RequeueBatch, len(parked))]
			var b bytes.Buffer
			b.WriteByte('[')
			for i, p := range part {
				if i > 0 {
					b.WriteByte(',')
				}
				b.Write(bytes.TrimSpace(p.Body))
				ids = append(ids, p.VoteID)
			}
			b.WriteByte(']')
			bodies = append(bodies, b.Bytes())
		}
		if err := q.Send(ctx, bodies); err != nil {
			return total, fmt.Errorf("requeue parked votes of conversation %s: %w", conversationID, err)
		}
		if err := store.Unpark(ctx, conversationID, ids); err != nil {
			return total, fmt.Errorf("unpark votes of conversation %s: %w", conversationID, err)
		}
		total += len(ids)
	}
}
