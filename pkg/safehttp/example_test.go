package safehttp_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/ejplatform/ej-mautic/pkg/safehttp"
)

func ExampleNewClient() {
	// A stand-in for the simulated Mautic, on loopback.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from Mautic")
	}))
	defer srv.Close()

	// Local runs allowlist the simulator, as MAUTIC_ALLOWLIST does;
	// production has an empty allowlist.
	allow, err := safehttp.ParseAllowlist(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	base, err := safehttp.NormalizeMauticURL(srv.URL+"/", allow)
	if err != nil {
		log.Fatal(err)
	}

	client := safehttp.NewClient(safehttp.Options{Allowlist: allow})
	resp, err := client.Get(base + "/api/contacts")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))

	// Anything else that is not public is refused before connecting.
	_, err = client.Get("http://169.254.169.254/latest/meta-data/")
	var denied *safehttp.DeniedError
	if errors.As(err, &denied) {
		fmt.Println("refused", denied.Addr, "-", denied.Reason)
	}
	// Output:
	// 200 hello from Mautic
	// refused 169.254.169.254 - cloud metadata endpoint (link-local 169.254.169.254)
}

func ExampleNormalizeMauticURL() {
	for _, raw := range []string{
		" HTTPS://Mautic.Example.org:443/mautic/ ",
		"http://mautic.example.org",
		"https://admin:secret@mautic.example.org",
		"https://10.0.0.7",
	} {
		u, err := safehttp.NormalizeMauticURL(raw, nil)
		if err != nil {
			fmt.Println("rejected:", err)
			continue
		}
		fmt.Println(u)
	}
	// Output:
	// https://mautic.example.org/mautic
	// rejected: Mautic URL must use https (http is accepted only for origins in MAUTIC_ALLOWLIST)
	// rejected: Mautic URL must not contain a user name or password
	// rejected: Mautic URL host 10.0.0.7 is not a public address: private network (RFC 1918, 10.0.0.0/8)
}
