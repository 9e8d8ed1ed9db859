package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ejplatform/ej-mautic/pkg/connection"
	"github.com/ejplatform/ej-mautic/pkg/tokens"
	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// Key prefixes and sort keys; see the package documentation.
const (
	connectionPrefix = "conv#"
	connectionSK     = "meta"
	statePrefix      = "state#"
	stateSK          = "state"
)

// timeLayout is RFC 3339 in UTC with a fixed number of fractional digits,
// so that stored times sort as strings.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// Store keeps connection metadata and pending states in one DynamoDB table.
// It implements connection.MetadataStore and is safe for concurrent use.
type Store struct {
	client api
	table  string

	// Requests made, and items they read or wrote; see Counts and Items.
	reads, writes         atomic.Int64
	readItems, writeItems atomic.Int64

	// units are the capacity units DynamoDB reported; see Capacity.
	units *capacity

	// retry is how batch requests retry the keys and items DynamoDB leaves
	// unprocessed.
	retry backoff

	// scanLimit, when non-zero, caps the items one Scan request evaluates
	// (tests use it to make ListConnections page).
	scanLimit int32
}

var (
	_ connection.MetadataStore = (*Store)(nil)
	_ votes.Store              = (*Store)(nil)
	_ tokens.LeaseStore        = (*Store)(nil)
	_ tokens.Refreshed         = (*Store)(nil)
)

// api is the part of the DynamoDB client the store uses (tests wrap it).
type api interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DescribeTimeToLive(context.Context, *dynamodb.DescribeTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(context.Context, *dynamodb.UpdateTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// New returns a Store on the given table, which must exist (see the package
// documentation, or CreateTable).
func New(client *dynamodb.Client, table string) *Store {
	units := &capacity{}
	return &Store{client: &metered{api: client, units: units}, units: units, table: table, retry: defaultBackoff}
}

// Counts returns how many read requests (GetItem, BatchGetItem, Query and
// Scan pages) and write requests (PutItem, UpdateItem, DeleteItem,
// BatchWriteItem) the store has made, failed ones and retries included.
// Table management (CreateTable) is not counted.
func (s *Store) Counts() (reads, writes int64) {
	return s.reads.Load(), s.writes.Load()
}

// Items returns how many items those requests read and wrote: one per
// single-item request (conditional ones included, whether or not the
// condition held), every key a BatchGetItem asked for and every put or
// delete a BatchWriteItem carried (retries of unprocessed ones count
// again), and the items a Query or Scan page evaluated.
func (s *Store) Items() (readItems, writeItems int64) {
	return s.readItems.Load(), s.writeItems.Load()
}

// read and wrote count one request and the items it read or wrote.
func (s *Store) read(items int)  { s.reads.Add(1); s.readItems.Add(int64(items)) }
func (s *Store) wrote(items int) { s.writes.Add(1); s.writeItems.Add(int64(items)) }

// CreateTable creates the store's table with on-demand billing, waits until
// it is active, and enables time-to-live on ttl. A table that already exists
// is left as it is, with TTL enabled if it was not. It is meant for tests
// and local use; in AWS the table is part of the SAM template.
func (s *Store) CreateTable(ctx context.Context) error {
	_, err := s.client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(s.table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", s.table, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(s.client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 500*time.Millisecond, 5*time.Second
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)}, 5*time.Minute); err != nil {
		return fmt.Errorf("wait for table %s: %w", s.table, err)
	}
	ttl, err := s.client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(s.table)})
	if err != nil {
		return fmt.Errorf("describe time to live of table %s: %w", s.table, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = s.client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(s.table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String("ttl"),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("enable time to live on table %s: %w", s.table, err)
	}
	return nil
}

// GetConnection reads a connection with a strongly consistent read. It
// returns connection.ErrNotFound when there is none.
func (s *Store) GetConnection(ctx context.Context, conversationID string) (connection.Connection, error) {
	s.read(1)
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            connectionKey(conversationID),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return connection.Connection{}, fmt.Errorf("get connection %s: %w", conversationID, err)
	}
	if len(out.Item) == 0 {
		return connection.Connection{}, fmt.Errorf("get connection %s: %w", conversationID, connection.ErrNotFound)
	}
	c, err := decodeConnection(out.Item)
	if err != nil {
		return connection.Connection{}, fmt.Errorf("get connection %s: %w", conversationID, err)
	}
	return c, nil
}

// PutConnection creates or replaces the whole connection item.
func (s *Store) PutConnection(ctx context.Context, c connection.Connection) error {
	if c.ConversationID == "" {
		return errors.New("put connection: empty conversation id")
	}
	item, err := attributevalue.MarshalMap(encodeConnection(c))
	if err != nil {
		return fmt.Errorf("put connection %s: %w", c.ConversationID, err)
	}
	s.wrote(1)
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item})
	if err != nil {
		return fmt.Errorf("put connection %s: %w", c.ConversationID, err)
	}
	return nil
}

// DeleteConnection removes a connection; deleting a missing one is not an
// error.
func (s *Store) DeleteConnection(ctx context.Context, conversationID string) error {
	s.wrote(1)
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table),
		Key:       connectionKey(conversationID),
	})
	if err != nil {
		return fmt.Errorf("delete connection %s: %w", conversationID, err)
	}
	return nil
}

// UpdateStatus sets the status of an existing connection, and its last
// error (removed when lastErr is nil), in one conditional write. It returns
// connection.ErrNotFound when the connection does not exist.
func (s *Store) UpdateStatus(ctx context.Context, conversationID string, status connection.Status, lastErr *connection.LastError) error {
	u := update{names: map[string]string{"#status": "status"}}
	u.set("#status = :status", ":status", &types.AttributeValueMemberS{Value: string(status)})
	if lastErr != nil {
		av, err := attributevalue.Marshal(encodeLastError(lastErr))
		if err != nil {
			return fmt.Errorf("update status of connection %s: %w", conversationID, err)
		}
		u.set("last_error = :last_error", ":last_error", av)
	} else {
		u.remove("last_error")
	}
	if err := s.updateConnection(ctx, conversationID, u); err != nil {
		return fmt.Errorf("update status of connection %s: %w", conversationID, err)
	}
	return nil
}

// AddStats adds a batch's counters to a connection in one conditional
// write, so that concurrent batches add up exactly. It sets LastSyncAt when
// st.SyncedAt is non-zero, and sets the last error when st.LastError is
// non-nil or else removes it when st.ClearLastError is true. Concurrent
// calls set LastSyncAt in the order they reach DynamoDB. It returns
// connection.ErrNotFound when the connection does not exist.
func (s *Store) AddStats(ctx context.Context, conversationID string, st connection.Stats) error {
	var u update
	u.add("votes_synced :votes_synced", ":votes_synced", number(st.VotesSynced))
	u.add("contacts_created :contacts_created", ":contacts_created", number(st.ContactsCreated))
	u.add("votes_skipped :votes_skipped", ":votes_skipped", number(st.VotesSkipped))
	if st.VotesStuck != 0 {
		u.add("votes_stuck :votes_stuck", ":votes_stuck", number(st.VotesStuck))
	}
	if !st.SyncedAt.IsZero() {
		u.set("last_sync_at = :last_sync_at", ":last_sync_at", &types.AttributeValueMemberS{Value: formatTime(st.SyncedAt)})
	}
	switch {
	case st.LastError != nil:
		av, err := attributevalue.Marshal(encodeLastError(st.LastError))
		if err != nil {
			return fmt.Errorf("add stats to connection %s: %w", conversationID, err)
		}
		u.set("last_error = :last_error", ":last_error", av)
	case st.ClearLastError:
		u.remove("last_error")
	}
	if err := s.updateConnection(ctx, conversationID, u); err != nil {
		return fmt.Errorf("add stats to connection %s: %w", conversationID, err)
	}
	return nil
}

// MarkTokenRefreshed sets when a connection's token was last refreshed, in
// one conditional write. It returns connection.ErrNotFound when the
// connection does not exist.
func (s *Store) MarkTokenRefreshed(ctx context.Context, conversationID string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("mark token of connection %s refreshed: zero time", conversationID)
	}
	var u update
	u.set("token_refreshed_at = :token_refreshed_at", ":token_refreshed_at", &types.AttributeValueMemberS{Value: formatTime(at)})
	if err := s.updateConnection(ctx, conversationID, u); err != nil {
		return fmt.Errorf("mark token of connection %s refreshed: %w", conversationID, err)
	}
	return nil
}

// updateConnection applies u to an existing connection item.
func (s *Store) updateConnection(ctx context.Context, conversationID string, u update) error {
	s.wrote(1)
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       connectionKey(conversationID),
		UpdateExpression:          aws.String(u.expression()),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeNames:  u.names,
		ExpressionAttributeValues: u.values,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return connection.ErrNotFound
	}
	return err
}

// ListConnections returns every connection, ordered by conversation id. It
// scans the whole table page by page (filtering on sk = meta), so it is for
// operator status and the keepalive schedule, not for a request's path.
func (s *Store) ListConnections(ctx context.Context) ([]connection.Connection, error) {
	in := &dynamodb.ScanInput{
		TableName:                 aws.String(s.table),
		FilterExpression:          aws.String("sk = :sk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":sk": &types.AttributeValueMemberS{Value: connectionSK}},
	}
	if s.scanLimit > 0 {
		in.Limit = aws.Int32(s.scanLimit)
	}
	var cs []connection.Connection
	for pages := dynamodb.NewScanPaginator(s.client, in); pages.HasMorePages(); {
		page, err := pages.NextPage(ctx)
		if err != nil {
			s.read(0)
			return nil, fmt.Errorf("list connections: %w", err)
		}
		s.read(int(page.ScannedCount))
		for _, item := range page.Items {
			c, err := decodeConnection(item)
			if err != nil {
				return nil, fmt.Errorf("list connections: %w", err)
			}
			cs = append(cs, c)
		}
	}
	slices.SortFunc(cs, func(a, b connection.Connection) int { return strings.Compare(a.ConversationID, b.ConversationID) })
	return cs, nil
}

// PutState stores a pending state; DynamoDB's TTL removes it some time after
// st.ExpiresAt, and TakeState ignores it from then on.
func (s *Store) PutState(ctx context.Context, st connection.PendingState) error {
	if st.State == "" {
		return errors.New("put state: empty state")
	}
	if st.ExpiresAt.IsZero() {
		return fmt.Errorf("put state for connection %s: no expiry", st.ConversationID)
	}
	item, err := attributevalue.MarshalMap(stateItem{
		PK:             statePrefix + st.State,
		SK:             stateSK,
		ConversationID: st.ConversationID,
		Generation:     st.Generation,
		BrowserHash:    st.BrowserHash,
		ExpiresAt:      formatTime(st.ExpiresAt),
		TTL:            ttlOf(st.ExpiresAt),
	})
	if err != nil {
		return fmt.Errorf("put state for connection %s: %w", st.ConversationID, err)
	}
	s.wrote(1)
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item})
	if err != nil {
		return fmt.Errorf("put state for connection %s: %w", st.ConversationID, err)
	}
	return nil
}

// TakeState deletes a state and returns what it held, in one conditional
// delete, so that of concurrent takes exactly one gets it. It returns
// connection.ErrNotFound when the state is missing, already taken, or
// expired at now (TTL deletion is lazy, so an expired state may still be
// stored; it is deleted all the same).
func (s *Store) TakeState(ctx context.Context, state string, now time.Time) (connection.PendingState, error) {
	s.wrote(1)
	out, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:           aws.String(s.table),
		Key:                 key(statePrefix+state, stateSK),
		ConditionExpression: aws.String("attribute_exists(pk)"),
		ReturnValues:        types.ReturnValueAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return connection.PendingState{}, fmt.Errorf("take state: %w", connection.ErrNotFound)
	}
	if err != nil {
		return connection.PendingState{}, fmt.Errorf("take state: %w", err)
	}
	var item stateItem
	if err := attributevalue.UnmarshalMap(out.Attributes, &item); err != nil {
		return connection.PendingState{}, fmt.Errorf("take state: decode: %w", err)
	}
	expiresAt, err := parseTime(item.ExpiresAt)
	if err != nil {
		return connection.PendingState{}, fmt.Errorf("take state: decode expires_at: %w", err)
	}
	if !now.Before(expiresAt) {
		return connection.PendingState{}, fmt.Errorf("take state: expired at %s: %w", item.ExpiresAt, connection.ErrNotFound)
	}
	return connection.PendingState{
		State:          strings.TrimPrefix(item.PK, statePrefix),
		ConversationID: item.ConversationID,
		Generation:     item.Generation,
		BrowserHash:    item.BrowserHash,
		ExpiresAt:      expiresAt,
	}, nil
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: sk},
	}
}

func connectionKey(conversationID string) map[string]types.AttributeValue {
	return key(connectionPrefix+conversationID, connectionSK)
}

func number(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: fmt.Sprint(n)}
}

// ttlOf is the ttl attribute for an item that expires at t: epoch seconds,
// rounded up so that DynamoDB never removes it early.
func ttlOf(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// update builds an UpdateExpression from its clauses.
type update struct {
	sets, adds, removes []string
	names               map[string]string
	values              map[string]types.AttributeValue
}

func (u *update) set(clause, name string, v types.AttributeValue) {
	u.sets = append(u.sets, clause)
	u.value(name, v)
}

func (u *update) add(clause, name string, v types.AttributeValue) {
	u.adds = append(u.adds, clause)
	u.value(name, v)
}

func (u *update) remove(attr string) { u.removes = append(u.removes, attr) }

func (u *update) value(name string, v types.AttributeValue) {
	if u.values == nil {
		u.values = make(map[string]types.AttributeValue)
	}
	u.values[name] = v
}

func (u *update) expression() string {
	var b strings.Builder
	for _, c := range []struct {
		action  string
		clauses []string
	}{{"SET", u.sets}, {"ADD", u.adds}, {"REMOVE", u.removes}} {
		if len(c.clauses) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.action + " " + strings.Join(c.clauses, ", "))
	}
	return b.String()
}
