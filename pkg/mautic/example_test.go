package mautic_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ejplatform/ej-mautic/pkg/mautic"
	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

// A vote's participant becomes a Mautic contact. The token comes from any
// oauth2 flow with mautic.Endpoint (the authorization-code flow in
// production; client credentials here, against the simulated Mautic).
func Example() {
	srv := mautictest.NewServer(mautictest.Options{})
	defer srv.Close()
	clientID, secret := srv.CreateClient([]string{"https://ej.example.org/"}, true)

	ctx := context.Background()
	creds := &clientcredentials.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		TokenURL:     mautic.Endpoint(srv.URL).TokenURL,
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	client, err := mautic.NewClient(srv.URL, creds.Client(ctx))
	if err != nil {
		log.Fatal(err)
	}

	contact, created, err := client.CreateContact(ctx, mautic.ContactInput{
		Phone:      "+5561999998888",
		Tags:       []string{"ej", "ej-conversation-42"},
		LastActive: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(created, contact.Fields["phone"], contact.Tags, contact.LastActive.Format(time.RFC3339))

	_, err = client.EditContact(ctx, contact.ID+1000, mautic.ContactInput{FirstName: "Ana"})
	switch mautic.KindOf(err) {
	case mautic.KindNotFound:
		fmt.Println("no such contact: create it")
	case mautic.KindRetryable, mautic.KindRateLimited:
		fmt.Println("retry later")
	case mautic.KindReauthorize:
		fmt.Println("ask the author to connect Mautic again")
	}
	// Output:
	// true +5561999998888 [ej ej-conversation-42] 2026-11-26T12:00:00Z
	// no such contact: create it
}
