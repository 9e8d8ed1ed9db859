package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ejplatform/ej-mautic/pkg/votes"
)

// Key prefixes and sort keys of the vote consumer's items; see the package
// documentation.
const (
	participantPrefix = "part#"
	participantSK     = "part"
	creationsPrefix   = "create#"
	creationsSK       = "create"
	parkedPrefix      = "parked#"
	parkedSKPrefix    = "vote#"
)

// reserveCondition lets Reserve write a reservation where there is no
// record, or a record with neither contact nor owner (processed votes
// only), or a reservation (no contact yet) whose lease ended or that is
// the caller's own.
const reserveCondition = "attribute_not_exists(pk) OR (contact_id = :zero AND (attribute_not_exists(#owner) OR lease_until < :now OR #owner = :owner))"

// creationsCondition lets BeginCreations take a guard that is not held, or
// whose lease ended, or that is the caller's own.
const creationsCondition = "attribute_not_exists(pk) OR lease_until < :now OR #owner = :owner"

// reserveAttempts bounds Reserve's retries when the record that failed
// its condition is gone before it could be read.
const reserveAttempts = 3

// contactItem is a participant's contact record as stored:
// pk part#{conversation_id}#{participant_id}, sk part. A reservation has
// contact_id 0, owner and lease_until; a completed record has contact_id,
// fingerprint and last_active; either may have votes, the processed votes
// in votes.ProcessedVotes' binary encoding.
type contactItem struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	ContactID   int64  `dynamodbav:"contact_id"`
	Fingerprint string `dynamodbav:"fingerprint,omitempty"`
	LastActive  string `dynamodbav:"last_active,omitempty"`
	Votes       []byte `dynamodbav:"votes,omitempty"`
	Owner       string `dynamodbav:"owner,omitempty"`
	LeaseUntil  string `dynamodbav:"lease_until,omitempty"`
}

// creationsItem is a conversation's creation guard as stored:
// pk create#{conversation_id}, sk create.
type creationsItem struct {
	PK           string   `dynamodbav:"pk"`
	SK           string   `dynamodbav:"sk"`
	Owner        string   `dynamodbav:"owner"`
	LeaseUntil   string   `dynamodbav:"lease_until"`
	Participants []string `dynamodbav:"participants,omitempty"`
}

// checkConversationID refuses a conversation id that would make a composite
// key ambiguous: the first '#' after a key's prefix ends the conversation
// id.
func checkConversationID(id string) error {
	if id == "" {
		return errors.New("empty conversation id")
	}
	if strings.Contains(id, "#") {
		return fmt.Errorf("conversation id %q contains '#'", id)
	}
	return nil
}

// idKey is the key of an item of one conversation: pk
// {prefix}{conversation_id}#{id}. The id may contain '#': it runs to the end
// of pk.
func idKey(prefix, conversationID, id, sk string) map[string]types.AttributeValue {
	return key(prefix+conversationID+"#"+id, sk)
}

// idOf returns the id in the pk of an item that idKey keyed.
func idOf(item map[string]types.AttributeValue, prefix, conversationID string) (string, error) {
	pk, ok := item["pk"].(*types.AttributeValueMemberS)
	if !ok {
		return "", errors.New("item without string pk")
	}
	id, ok := strings.CutPrefix(pk.Value, prefix+conversationID+"#")
	if !ok {
		return "", fmt.Errorf("unexpected pk %q", pk.Value)
	}
	return id, nil
}

// Contacts returns the records of the participants that have one,
// reservations included, with strongly consistent reads (BatchGetItem, 100
// keys a request): a stale record would cost a needless Mautic call, which
// is dearer than the read.
func (s *Store) Contacts(ctx context.Context, conversationID string, participantIDs []string) (map[string]votes.ContactRecord, error) {
	if err := checkConversationID(conversationID); err != nil {
		return nil, fmt.Errorf("read contact records: %w", err)
	}
	ids := unique(participantIDs)
	keys := make([]map[string]types.AttributeValue, len(ids))
	for i, id := range ids {
		keys[i] = idKey(participantPrefix, conversationID, id, participantSK)
	}
	recs := make(map[string]votes.ContactRecord)
	err := s.batchGet(ctx, keys, "", true, func(item map[string]types.AttributeValue) error {
		id, err := idOf(item, participantPrefix, conversationID)
		if err != nil {
			return err
		}
		rec, err := decodeContact(id, item)
		if err != nil {
			return err
		}
		recs[id] = rec
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read contact records of conversation %s: %w", conversationID, err)
	}
	return recs, nil
}

// Reserve writes a reservation (contact id 0, owner, lease until
// leaseUntil) for a participant, in one conditional UpdateItem, when the
// participant has no record, or a record with neither contact nor owner
// (whose processed votes it keeps), or a reservation whose lease ended
// before now, or a reservation of owner's own. TakenOver is set when it
// replaced a reservation (a dead worker's, or owner's own earlier
// attempt), which may have created the contact already.
//
// When the condition fails, it returns the record that made it fail (a
// completed record, or another owner's live reservation) and
// reserved=false; DynamoDB returns that record with the failure, so this
// costs no read.
func (s *Store) Reserve(ctx context.Context, conversationID, participantID, owner string, now, leaseUntil time.Time) (votes.ContactRecord, bool, error) {
	fail := func(err error) (votes.ContactRecord, bool, error) {
		return votes.ContactRecord{}, false, fmt.Errorf("reserve participant %q of conversation %s: %w", participantID, conversationID, err)
	}
	switch err := checkConversationID(conversationID); {
	case err != nil:
		return fail(err)
	case owner == "":
		return fail(errors.New("empty owner"))
	case now.IsZero() || !leaseUntil.After(now):
		return fail(fmt.Errorf("lease until %v does not end after now %v", leaseUntil, now))
	}
	k := idKey(participantPrefix, conversationID, participantID, participantSK)
	for range reserveAttempts {
		s.wrote(1)
		out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                aws.String(s.table),
			Key:                      k,
			UpdateExpression:         aws.String("SET contact_id = :zero, #owner = :owner, lease_until = :until"),
			ConditionExpression:      aws.String(reserveCondition),
			ExpressionAttributeNames: map[string]string{"#owner": "owner"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":zero":  number(0),
				":now":   &types.AttributeValueMemberS{Value: formatTime(now)},
				":owner": &types.AttributeValueMemberS{Value: owner},
				":until": &types.AttributeValueMemberS{Value: formatTime(leaseUntil)},
			},
			ReturnValues:                        types.ReturnValueAllOld,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			prev, err := decodeContact(participantID, out.Attributes)
			if err != nil {
				return fail(err)
			}
			return votes.ContactRecord{
				ParticipantID: participantID,
				Votes:         prev.Votes,
				Owner:         owner,
				LeaseUntil:    leaseUntil.UTC(),
				TakenOver:     prev.Owner != "",
			}, true, nil
		}
		var failed *types.ConditionalCheckFailedException
		if !errors.As(err, &failed) {
			return fail(err)
		}
		old := failed.Item
		if len(old) == 0 {
			// DynamoDB always returns the item; this is for emulators
			// that do not.
			if old, err = s.getItem(ctx, k); err != nil {
				return fail(err)
			}
		}
		if len(old) > 0 {
			rec, err := decodeContact(participantID, old)
			if err != nil {
				return fail(err)
			}
			return rec, false, nil
		}
		// The record that failed the condition was deleted (released)
		// before it could be read: try again.
	}
	return fail(fmt.Errorf("the record kept changing during %d attempts", reserveAttempts))
}

// SaveContacts writes records whole (contact id ≥ 0; owner and lease only
// with contact id 0), with their processed votes, replacing any record,
// reservations included, whoever owns them (BatchWriteItem, 25 a
// request). Of records of the same participant, the last is written.
func (s *Store) SaveContacts(ctx context.Context, conversationID string, recs []votes.ContactRecord) error {
	if err := checkConversationID(conversationID); err != nil {
		return fmt.Errorf("save contact records: %w", err)
	}
	at := make(map[string]int, len(recs)) // participant id → index in writes
	var writes []types.WriteRequest
	for _, r := range recs {
		if r.ContactID < 0 {
			return fmt.Errorf("save contact record of participant %q of conversation %s: contact id %d is negative", r.ParticipantID, conversationID, r.ContactID)
		}
		vb, err := r.Votes.MarshalBinary()
		if err != nil {
			return fmt.Errorf("save contact record of participant %q of conversation %s: %w", r.ParticipantID, conversationID, err)
		}
		k := idKey(participantPrefix, conversationID, r.ParticipantID, participantSK)
		it := contactItem{
			PK:          k["pk"].(*types.AttributeValueMemberS).Value,
			SK:          participantSK,
			ContactID:   int64(r.ContactID),
			Fingerprint: r.Fingerprint,
			LastActive:  formatTime(r.LastActive),
			Votes:       vb,
		}
		if r.ContactID == 0 {
			it.Owner, it.LeaseUntil = r.Owner, formatTime(r.LeaseUntil)
		}
		item, err := attributevalue.MarshalMap(it)
		if err != nil {
			return fmt.Errorf("save contact record of participant %q of conversation %s: %w", r.ParticipantID, conversationID, err)
		}
		if i, ok := at[r.ParticipantID]; ok {
			writes[i] = put(item)
			continue
		}
		at[r.ParticipantID] = len(writes)
		writes = append(writes, put(item))
	}
	if err := s.batchWrite(ctx, writes); err != nil {
		return fmt.Errorf("save contact records of conversation %s: %w", conversationID, err)
	}
	return nil
}

// ReleaseReservation ends owner's reservation of a participant, if it is
// still owner's and still has no contact: it is deleted, or, when it holds
// processed votes, keeps only them. Otherwise it does nothing (that is not
// an error).
func (s *Store) ReleaseReservation(ctx context.Context, conversationID, participantID, owner string) error {
	if err := checkConversationID(conversationID); err != nil {
		return fmt.Errorf("release reservation: %w", err)
	}
	k := idKey(participantPrefix, conversationID, participantID, participantSK)
	names := map[string]string{"#owner": "owner"}
	values := map[string]types.AttributeValue{
		":owner": &types.AttributeValueMemberS{Value: owner},
		":zero":  number(0),
	}
	s.wrote(1)
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       k,
		ConditionExpression:       aws.String("#owner = :owner AND contact_id = :zero AND attribute_not_exists(votes)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		// What failed the condition comes with the failure.
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if err == nil || !errors.As(err, &failed) {
		if err != nil {
			return fmt.Errorf("release reservation of participant %q of conversation %s: %w", participantID, conversationID, err)
		}
		return nil
	}
	if _, ok := failed.Item["votes"]; !ok && len(failed.Item) > 0 {
		// Another owner's, or completed: left as it is.
		return nil
	}
	// Owner's reservation with processed votes (or an emulator that
	// returned nothing): keep the votes.
	s.wrote(1)
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       k,
		UpdateExpression:          aws.String("REMOVE #owner, lease_until"),
		ConditionExpression:       aws.String("#owner = :owner AND contact_id = :zero"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("release reservation of participant %q of conversation %s: %w", participantID, conversationID, err)
	}
	return nil
}

// BeginCreations takes a conversation's creation guard for owner until
// leaseUntil, naming participantIDs, in one conditional UpdateItem: when
// there is none, or its lease ended before now, or owner holds it. The
// participants the replaced guard named (a dead run's, whose contacts may
// exist without a record) are returned and stay named (ADD to a string
// set). When another owner holds it, it returns held=false and the
// holder's lease end, from the failure (no read). The guard has no ttl:
// a dead run's must stay until a later run takes it over.
func (s *Store) BeginCreations(ctx context.Context, conversationID, owner string, participantIDs []string, now, leaseUntil time.Time) (orphans []string, until time.Time, held bool, err error) {
	fail := func(err error) ([]string, time.Time, bool, error) {
		return nil, time.Time{}, false, fmt.Errorf("begin creations in conversation %s: %w", conversationID, err)
	}
	switch err := checkConversationID(conversationID); {
	case err != nil:
		return fail(err)
	case owner == "":
		return fail(errors.New("empty owner"))
	case now.IsZero() || !leaseUntil.After(now):
		return fail(fmt.Errorf("lease until %v does not end after now %v", leaseUntil, now))
	}
	update := "SET #owner = :owner, lease_until = :until"
	values := map[string]types.AttributeValue{
		":now":   &types.AttributeValueMemberS{Value: formatTime(now)},
		":owner": &types.AttributeValueMemberS{Value: owner},
		":until": &types.AttributeValueMemberS{Value: formatTime(leaseUntil)},
	}
	if ids := unique(participantIDs); len(ids) > 0 {
		update += " ADD participants :ids"
		values[":ids"] = &types.AttributeValueMemberSS{Value: ids}
	}
	s.wrote(1)
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(creationsPrefix+conversationID, creationsSK),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String(creationsCondition),
		ExpressionAttributeNames:  map[string]string{"#owner": "owner"},
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllOld,
		// The holder's lease end comes with a failure.
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		var old creationsItem
		if err := attributevalue.UnmarshalMap(out.Attributes, &old); err != nil {
			return fail(err)
		}
		return old.Participants, time.Time{}, true, nil
	}
	var failed *types.ConditionalCheckFailedException
	if !errors.As(err, &failed) {
		return fail(err)
	}
	var old creationsItem
	if err := attributevalue.UnmarshalMap(failed.Item, &old); err != nil {
		return fail(err)
	}
	if until, err = parseTime(old.LeaseUntil); err != nil {
		return fail(err)
	}
	if until.IsZero() {
		// Emulators that return no item: the guard is held for now.
		until = now
	}
	return nil, until, false, nil
}

// EndCreations deletes owner's creation guard of a conversation (one
// conditional DeleteItem); another owner's, or none, is left as it is,
// without error.
func (s *Store) EndCreations(ctx context.Context, conversationID, owner string) error {
	if err := checkConversationID(conversationID); err != nil {
		return fmt.Errorf("end creations: %w", err)
	}
	s.wrote(1)
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(creationsPrefix+conversationID, creationsSK),
		ConditionExpression:       aws.String("#owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#owner": "owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": &types.AttributeValueMemberS{Value: owner}},
	})
	var failed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("end creations in conversation %s: %w", conversationID, err)
	}
	return nil
}

// getItem reads one item with a strongly consistent read; a missing item
// is nil.
func (s *Store) getItem(ctx context.Context, k map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	s.read(1)
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            k,
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

func decodeContact(participantID string, av map[string]types.AttributeValue) (votes.ContactRecord, error) {
	var it contactItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return votes.ContactRecord{}, fmt.Errorf("decode contact record of participant %q: %w", participantID, err)
	}
	if it.ContactID < 0 || it.ContactID > math.MaxInt32 {
		return votes.ContactRecord{}, fmt.Errorf("decode contact record of participant %q: contact id %d out of range", participantID, it.ContactID)
	}
	rec := votes.ContactRecord{
		ParticipantID: participantID,
		ContactID:     int(it.ContactID),
		Fingerprint:   it.Fingerprint,
		Owner:         it.Owner,
	}
	if err := rec.Votes.UnmarshalBinary(it.Votes); err != nil {
		return votes.ContactRecord{}, fmt.Errorf("decode contact record of participant %q: %w", participantID, err)
	}
	var err error
	if rec.LastActive, err = parseTime(it.LastActive); err != nil {
		return votes.ContactRecord{}, fmt.Errorf("decode contact record of participant %q: last_active: %w", participantID, err)
	}
	if rec.LeaseUntil, err = parseTime(it.LeaseUntil); err != nil {
		return votes.ContactRecord{}, fmt.Errorf("decode contact record of participant %q: lease_until: %w", participantID, err)
	}
	return rec, nil
}

// Park keeps votes of a conversation that cannot sync now, each in its own
// item under the conversation's parked partition (BatchWriteItem, 25 a
// request). Parking a vote again replaces it; of votes with the same id,
// the last is kept.
func (s *Store) Park(ctx context.Context, conversationID string, vs []votes.ParkedVote) error {
	if err := checkConversationID(conversationID); err != nil {
		return fmt.Errorf("park votes: %w", err)
	}
	pk := &types.AttributeValueMemberS{Value: parkedPrefix + conversationID}
	at := make(map[string]int, len(vs))
	var writes []types.WriteRequest
	for _, v := range vs {
		body := v.Body
		if body == nil {
			body = []byte{}
		}
		w := put(map[string]types.AttributeValue{
			"pk":   pk,
			"sk":   &types.AttributeValueMemberS{Value: parkedSKPrefix + v.VoteID},
			"body": &types.AttributeValueMemberB{Value: body},
		})
		if i, ok := at[v.VoteID]; ok {
			writes[i] = w
			continue
		}
		at[v.VoteID] = len(writes)
		writes = append(writes, w)
	}
	if err := s.batchWrite(ctx, writes); err != nil {
		return fmt.Errorf("park votes of conversation %s: %w", conversationID, err)
	}
	return nil
}

// Parked returns up to limit parked votes of a conversation, ordered by
// vote id (as strings), with a strongly consistent Query.
func (s *Store) Parked(ctx context.Context, conversationID string, limit int) ([]votes.ParkedVote, error) {
	if err := checkConversationID(conversationID); err != nil {
		return nil, fmt.Errorf("read parked votes: %w", err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("read parked votes of conversation %s: limit %d is not positive", conversationID, limit)
	}
	limit = min(limit, math.MaxInt32)
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: parkedPrefix + conversationID}},
		ConsistentRead:            aws.Bool(true),
	}
	var parked []votes.ParkedVote
	for {
		in.Limit = aws.Int32(int32(limit - len(parked)))
		out, err := s.client.Query(ctx, in)
		if err != nil {
			s.read(0)
			return nil, fmt.Errorf("read parked votes of conversation %s: %w", conversationID, err)
		}
		s.read(int(out.ScannedCount))
		for _, item := range out.Items {
			v, err := decodeParked(item)
			if err != nil {
				return nil, fmt.Errorf("read parked votes of conversation %s: %w", conversationID, err)
			}
			parked = append(parked, v)
		}
		// A page ends early at 1 MB.
		if len(out.LastEvaluatedKey) == 0 || len(parked) >= limit {
			return parked, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

func decodeParked(item map[string]types.AttributeValue) (votes.ParkedVote, error) {
	sk, ok := item["sk"].(*types.AttributeValueMemberS)
	if !ok {
		return votes.ParkedVote{}, errors.New("parked vote without string sk")
	}
	id, ok := strings.CutPrefix(sk.Value, parkedSKPrefix)
	if !ok {
		return votes.ParkedVote{}, fmt.Errorf("parked vote with unexpected sk %q", sk.Value)
	}
	body, ok := item["body"].(*types.AttributeValueMemberB)
	if !ok {
		return votes.ParkedVote{}, fmt.Errorf("parked vote %q without binary body", id)
	}
	return votes.ParkedVote{VoteID: id, Body: body.Value}, nil
}

// Unpark deletes parked votes (BatchWriteItem, 25 a request); deleting
// one that is not parked is not an error.
func (s *Store) Unpark(ctx context.Context, conversationID string, voteIDs []string) error {
	if err := checkConversationID(conversationID); err != nil {
		return fmt.Errorf("unpark votes: %w", err)
	}
	ids := unique(voteIDs)
	writes := make([]types.WriteRequest, len(ids))
	for i, id := range ids {
		writes[i] = del(key(parkedPrefix+conversationID, parkedSKPrefix+id))
	}
	if err := s.batchWrite(ctx, writes); err != nil {
		return fmt.Errorf("unpark votes of conversation %s: %w", conversationID, err)
	}
	return nil
}
