package votes

import (
	"context"

	"github.com/ejplatform/ej-mautic/pkg/failure"
)

// credentialRejected handles participants whose contact could not be
// written because Mautic refused a client_credentials connection's API
// credential (tokens.ErrCredentialRejected: deleted, secret changed, grant
// taken off): there is no authorization to redo, only the credential to
// register again (PUT). The connection needs re-authorization with a
// last_error that says so; the votes are parked until then.
func (r *run) credentialRejected(ctx context.Context, pas []*participant, err error) {
	r.needsReauthorization(ctx, pas, string(failure.ClientCredentialsRejected), failure.ClientCredentialsRejected.Message(""), err)
}
