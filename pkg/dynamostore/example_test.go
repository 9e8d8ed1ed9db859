package dynamostore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/dynamostore"
)

// A Lambda builds the store once, outside its handler, on the table named
// by TABLE_NAME. (Not run by go test: it needs AWS.)
func Example() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	store := dynamostore.New(dynamodb.NewFromConfig(cfg), os.Getenv("TABLE_NAME"))

	now := time.Now()
	err = store.PutConnection(ctx, connection.Connection{
		ConversationID: "42",
		Status:         connection.StatusPending,
		MauticURL:      "https://mautic.example.org",
		ClientID:       "1_abc",
		Generation:     1,
		CreatedAt:      now,
		UpdatedAt:      now,
	})
	if err != nil {
		log.Fatal(err)
	}

	// The vote consumer adds a batch's counters in one write.
	err = store.AddStats(ctx, "42", connection.Stats{VotesSynced: 25, ContactsCreated: 20, SyncedAt: now})
	if errors.Is(err, connection.ErrNotFound) {
		fmt.Println("the connection was deleted meanwhile")
	} else if err != nil {
		log.Fatal(err)
	}

	c, err := store.GetConnection(ctx, "42")
	if err != nil {
		log.Fatal(err)
	}
	reads, writes := store.Counts()
	fmt.Println(c.Status, c.VotesSynced, reads, writes)
}
