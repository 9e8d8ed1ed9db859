package mautic

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// OAuthConfig is the OAuth2 configuration of one Mautic API credential:
// the one place it is built, for the authorize redirect, the code
// exchange and the refresh. redirectURL is empty where no redirect is
// involved (refresh).
func OAuthConfig(mauticURL, clientID, clientSecret, redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: clientSecret,
		Endpoint:     Endpoint(mauticURL),
		RedirectURL:  redirectURL,
	}
}

// ClientCredentials asks Mautic's token endpoint for a client_credentials
// token with hc (the SSRF-safe client). It is also the cheap check of a
// client id/secret pair before any browser is involved: Mautic answers
// invalid_client for a wrong pair, unauthorized_client when the pair is
// right but the credential may not use this grant, and api_disabled when
// the API is off. Errors from Mautic are *APIError (Status 404 means the
// address is not a Mautic's token endpoint); transport errors are
// returned as they are. The token's ExpiresIn is the answer's expires_in
// (its Expiry counts from the answer, on the wall clock), so that a caller
// can count it on its own clock.
func ClientCredentials(ctx context.Context, hc *http.Client, mauticURL, clientID, clientSecret string) (*oauth2.Token, error) {
	cfg := clientcredentials.Config{
		ClientID:     clientID,
		ClientSecret: clientSecret,
		TokenURL:     Endpoint(mauticURL).TokenURL,
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	tok, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return nil, FromRetrieveError(re)
	}
	if err != nil {
		return nil, err
	}
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		tok.ExpiresIn = int64(v)
	case string:
		tok.ExpiresIn, _ = strconv.ParseInt(v, 10, 64)
	}
	return tok, nil
}
