package mautictest_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"golang.org/x/oauth2"

	"github.com/ejplatform/ej-mautic/pkg/mautic/mautictest"
)

// A connector's whole path against the simulated Mautic: consent in the
// "browser", code exchange, then a contact.
func Example() {
	srv := mautictest.NewServer(mautictest.Options{})
	defer srv.Close()

	const callback = "http://127.0.0.1:9000/callback"
	id, secret := srv.CreateClient([]string{callback}, false)
	conf := &oauth2.Config{
		ClientID:     id,
		ClientSecret: secret,
		RedirectURL:  callback,
		Endpoint: oauth2.Endpoint{
			AuthURL:   srv.URL + "/oauth/v2/authorize",
			TokenURL:  srv.URL + "/oauth/v2/token",
			AuthStyle: oauth2.AuthStyleInParams, // Mautic refuses HTTP Basic
		},
	}
	ctx := context.Background()

	loc, err := mautictest.Consent(ctx, nil, conf.AuthCodeURL("state-1"), "admin", "mautic", false)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("state:", loc.Query().Get("state"))

	tok, err := conf.Exchange(ctx, loc.Query().Get("code"))
	if err != nil {
		log.Fatal(err)
	}
	resp, err := conf.Client(ctx, tok).Post(srv.URL+"/api/contacts/new", "application/json",
		strings.NewReader(`{"phone":"+5561999990001","tags":["ej","ej-conversation-42"]}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("Location"))

	for _, c := range srv.Contacts() {
		fmt.Println(c.ID, c.Fields["phone"], c.Tags)
	}
	fmt.Println("token requests:", srv.Stats().Requests["POST /oauth/v2/token"])
	// Output:
	// state: state-1
	// 201 Created /api/contacts/1
	// 1 +5561999990001 [ej ej-conversation-42]
	// token requests: 1
}
