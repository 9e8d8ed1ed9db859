package localstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/localstore"
)

func Example() {
	dir, err := os.MkdirTemp("", "ejmautic-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	store, err := localstore.Open(dir) // creates ejmautic.db and secret.key
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()

	// A connection: metadata in the clear, the secret encrypted.
	err = store.PutConnection(ctx, connection.Connection{
		ConversationID: "42",
		Status:         connection.StatusPending,
		MauticURL:      "https://mautic.example.org",
		ClientID:       "client-id",
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.PutSecret(ctx, "42", connection.Secret{ClientSecret: "client-secret"}); err != nil {
		log.Fatal(err)
	}

	// The vote queue: receive, process, delete; what is not deleted comes
	// back after the visibility timeout.
	votes := [][]byte{[]byte(`{"version":1,"vote_id":"1","conversation_id":"42"}`)}
	if err := store.Enqueue(ctx, votes); err != nil {
		log.Fatal(err)
	}
	msgs, err := store.Receive(ctx, 10, 30*time.Second, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range msgs {
		fmt.Printf("message %s (receive %d): %s\n", m.ID, m.ReceiveCount, m.Body)
		if err := store.AddStats(ctx, "42", connection.Stats{VotesSynced: 1, SyncedAt: time.Now()}); err != nil {
			log.Fatal(err)
		}
		if err := store.Delete(ctx, m.ID); err != nil {
			log.Fatal(err)
		}
	}

	c, err := store.GetConnection(ctx, "42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Status, c.VotesSynced)
	// Output:
	// message 1 (receive 1): {"version":1,"vote_id":"1","conversation_id":"42"}
	// pending_authorization 1
}
