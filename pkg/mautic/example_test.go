package mautic_test

import (
	"context"
	"errors"
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

// A conversation's participants as a Mautic segment: a tag, a segment
// filtered by it (found again by its alias, since creating is not
// idempotent), and the contacts put in at once — Mautic would only fill a
// filtered segment when its segment job runs.
func ExampleClient_AddToSegment() {
	srv := mautictest.NewServer(mautictest.Options{Version: "7.0"})
	defer srv.Close()
	clientID, secret := srv.CreateClient([]string{"https://ej.example.org/"}, true)
	ctx := context.Background()
	creds := &clientcredentials.Config{ClientID: clientID, ClientSecret: secret,
		TokenURL: mautic.Endpoint(srv.URL).TokenURL, AuthStyle: oauth2.AuthStyleInParams}
	client, err := mautic.NewClient(srv.URL, creds.Client(ctx))
	if err != nil {
		log.Fatal(err)
	}

	tag, err := client.EnsureTag(ctx, "ej-conversation-42")
	if err != nil {
		log.Fatal(err)
	}
	seg, found, err := client.FindSegmentByAlias(ctx, "ej-conversation-42")
	if err != nil {
		log.Fatal(err)
	}
	if !found {
		seg, err = client.CreateSegment(ctx, mautic.SegmentInput{
			Name:    "EJ: conversa 42",
			Alias:   "ej-conversation-42",
			Filters: []mautic.SegmentFilter{mautic.TagFilter(tag.ID)},
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(seg.Alias, seg.Filters[0].Field, seg.Filters[0].Operator, seg.Filters[0].Values)

	ana, _, err := client.CreateContact(ctx, mautic.ContactInput{Phone: "+5561999998888", Tags: []string{tag.Name}})
	if err != nil {
		log.Fatal(err)
	}
	err = client.AddToSegment(ctx, seg.ID, []int{ana.ID, 4242})
	var ae *mautic.APIError
	if errors.As(err, &ae) && mautic.IsNotFound(err) {
		fmt.Println("not added:", ae.Details["ids"])
	}
	members, err := client.SearchContacts(ctx, mautic.Query{Search: "segment:" + seg.Alias})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(members.Total, members.Contacts[0].Fields["phone"])
	// Output:
	// ej-conversation-42 tags in [1]
	// not added: [4242]
	// 1 +5561999998888
}
