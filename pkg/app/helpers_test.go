package app_test

import (
	"strings"

	"github.com/ejplatform/ej-mautic/pkg/connection"
)

func appSecret() connection.AppSecret {
	return connection.AppSecret{APIKeys: []string{strings.Repeat("k", 40)}, LinkKey: []byte(strings.Repeat("l", 32))}
}
