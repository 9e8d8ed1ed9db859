package connect_test

import (
	"bytes"
	"fmt"
	"log"
	"time"

	"github.com/ejplatform/ej-mautic/pkg/connect"
)

// A signed authorize link is bound to one conversation and one
// registration, and expires.
func ExampleLinkSigner() {
	signer, err := connect.NewLinkSigner(bytes.Repeat([]byte{7}, 32)) // AppSecret.LinkKey
	if err != nil {
		log.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	link := signer.Sign("42", 3, now.Add(connect.LinkTTL))

	generation, err := signer.Verify("42", link, now)
	fmt.Println(generation, err)
	_, err = signer.Verify("43", link, now)
	fmt.Println(err)
	_, err = signer.Verify("42", link, now.Add(16*time.Minute))
	fmt.Println(err)
	// Output:
	// 3 <nil>
	// authorize link is invalid
	// authorize link has expired
}
