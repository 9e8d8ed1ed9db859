// Package dynamostore keeps connection metadata, pending authorization
// states, the vote consumer's records and leases in one DynamoDB table.
// Store implements connection.MetadataStore, votes.Store,
// tokens.LeaseStore and tokens.Refreshed.
//
// # Table
//
// The table (TABLE_NAME) has a string partition key pk, a string sort key
// sk, on-demand billing, and time-to-live on the number attribute ttl
// (epoch seconds). CreateTable makes one like it for tests and local use;
// in AWS the SAM template declares it:
//
//	AttributeDefinitions:    pk S, sk S
//	KeySchema:               pk HASH, sk RANGE
//	BillingMode:             PAY_PER_REQUEST
//	TimeToLiveSpecification: AttributeName ttl, Enabled true
//
// # Key scheme
//
// The table holds several kinds of item. Each kind has its own pk prefix, so
// the keys of two kinds never collide, and every access pattern on a hot
// path is a read or write of known keys (no scans, no index):
//
//	item                         pk                                       sk              ttl
//	connection metadata          conv#{conversation_id}                   meta            —
//	pending authorization state  state#{state}                            state           expires_at
//	participant → contact        part#{conversation_id}#{participant_id}  part            —
//	contact creation guard       create#{conversation_id}                 create          —
//	parked vote                  parked#{conversation_id}                 vote#{vote_id}  —
//	lease                        lease#{key}                              lease           lease end + 1 h
//
// Keys stay unambiguous although vote ids, participant ids, states and
// lease keys are free strings that may contain '#':
//
//   - a pk's kind is the text up to its first '#', and no kind's prefix
//     is another's;
//   - a key holds at most one free string, and it comes last, running to
//     the end of the key;
//   - conversation ids (EJ's: letters, digits, '_' and '-') never contain
//     '#', and the vote consumer's methods refuse one that does, so in a
//     key of two ids the first '#' after the prefix ends the conversation
//     id.
//
// So part#42#a#b is participant "a#b" of conversation 42, never
// participant "b" of conversation "42#a". (The vote consumer's
// participant ids are mapping keys: 8 hex digits naming the Mautic, ':'
// and EJ's participant id.)
//
// What each item holds, and how the vote consumer and the token manager use
// them:
//
//   - A participant's record holds contact_id (N), fingerprint and
//     last_active (the lastActive last sent to Mautic) once complete, and
//     votes (B): the participant's processed votes, the vote consumer's
//     idempotency (votes.ProcessedVotes' encoding: EJ's numeric vote ids
//     as varints, grouped by expiry day, pruned when the record is
//     written; 200 votes fit with the rest in one 1 KB write unit).
//     Contacts reads a batch's records at once (BatchGetItem, 100 keys a
//     request, strongly consistent: a stale record would cost a needless
//     Mautic call or count a vote twice); SaveContacts writes them whole
//     (BatchWriteItem), at most once per participant per batch. A record
//     is also a reservation: contact_id 0, owner and lease_until. Reserve
//     is one conditional UpdateItem that succeeds only where there is no
//     record, or one with neither contact nor owner (its votes kept), or a
//     reservation whose lease ended or that is the caller's own; the
//     loser gets the winner's record with its failure
//     (ReturnValuesOnConditionCheckFailure), without another read.
//     ReleaseReservation deletes its owner's reservation while it has no
//     contact (keeping only the votes, when it has some). The records
//     have no ttl: were a dead worker's reservation removed, the next
//     worker could not know to look for the contact it may have created.
//   - A contact creation guard holds owner, lease_until and participants
//     (a string set of the mapping keys a run is about to create); no ttl,
//     since a dead run's guard must wait for the next run.
//     New participants are created under it rather than under a
//     reservation each: BeginCreations is one conditional UpdateItem
//     (free, ended, or the caller's own; participants ADDed, so those of
//     a dead run stay named, and come back as ALL_OLD to be looked for in
//     Mautic first); EndCreations deletes it once the records are saved.
//   - A parked vote holds the vote's message body (B). A conversation's
//     parked votes share one partition, read in vote id order by a Query.
//   - A lease holds owner and lease_until. The token manager names its
//     refresh lease refresh#{conversation_id}, so its pk is
//     lease#refresh#{conversation_id}; a client_credentials connection
//     asks for its tokens under the same lease. The connect flow makes a
//     conversation's Mautic segment under segment#{conversation_id}.
//   - A connection item holds the connection's metadata; its grant
//     (absent: authorization_code), its segment (a map: id, alias, name)
//     and segment_error (a map like last_error) are written whole by
//     PutConnection, never by the counters' updates.
//
// DeleteConnection removes the connection item only: a conversation's
// contact records and parked votes stay.
//
// TTL deletion is lazy (it may lag by days), so a reader of an item with a
// ttl checks the expiry itself: TakeState treats an expired state as absent,
// and AcquireLease compares lease_until, never ttl. DynamoDB's TTL only ever
// removes garbage.
// Processed votes past their retention are dropped from a record when it
// is next written; until then they still count as seen, which is
// harmless: the vote was processed.
//
// ListConnections is the one Scan, filtered on sk = meta, for operator
// status and the keepalive schedule; it is never on a vote's path.
//
// # Attributes
//
// Attribute names are snake_case. Times are UTC strings in RFC 3339 with
// nine fractional digits (2026-11-26T12:00:00.000000000Z), so that they
// compare as strings in condition and filter expressions; zero times are
// not stored. Counters are numbers, updated in place with ADD.
//
// Store counts the DynamoDB requests it makes (Counts), the items they
// read and write (Items) and the capacity units DynamoDB reports they
// consumed (Capacity: ReturnConsumedCapacity TOTAL on every data request,
// and a unit per failed conditional write, which DynamoDB bills without
// reporting), so that benchmarks can report them per vote.
//
// Batch requests (BatchGetItem, 100 keys; BatchWriteItem, 25 writes) retry
// what DynamoDB leaves unprocessed up to six times, backing off
// exponentially from 25 ms (about 1.6 s in all), then fail. Duplicate ids
// in one call are merged, since DynamoDB refuses a batch with a key twice.
package dynamostore
