"""EJ's votes to ej-mautic's SQS queue (docs/ej-integration.md).

Copy this file into EJ (for example as ej/mautic/producer.py) and adapt the
lines marked "adapt". It needs boto3 (a version that speaks SQS's JSON
protocol; tested with 1.43) and, only to validate messages in EJ's tests,
jsonschema with its format extras (pip install "jsonschema[format-nongpl]").

Settings (Django settings, else environment variables):
  EJ_MAUTIC_QUEUE_URL     the VotesQueueUrl output of ej-mautic's stack
  EJ_MAUTIC_BACKFILL_QUEUE_URL
                          its BackfillQueueUrl output: where backfill()
                          sends past votes (only the backfill needs it)
  EJ_MAUTIC_REGION        the queues' AWS region; by default read from the
                          queue URL (https://sqs.<region>.amazonaws.com/...),
                          else AWS_REGION / AWS_DEFAULT_REGION
  EJ_MAUTIC_ENDPOINT_URL  another SQS endpoint (a local one, for tests)
Credentials come from boto3's usual chain (the instance's or task's role,
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws).
"""
import datetime
import hashlib
import json
import logging
import os
import random
import re
import threading
import time

import boto3
from botocore.config import Config

logger = logging.getLogger("ej_mautic")

MAX_BYTES = 256 * 1024  # per body and per send_message_batch request
MAX_MAUTIC_ID = 2**53 - 1

# In the participant's request: one attempt, short timeouts, so that an
# unreachable SQS costs the request at most about 3 s. botocore's
# max_attempts counts the retries after the first attempt: 0 is no retry.
FAST = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 0, "mode": "standard"})
# In the retry path (a Celery task, the outbox job), off the request:
# up to 1 + 3 attempts, backing off, on throttling, 5xx and network errors.
PATIENT = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})

# The retry path: a callable that takes a list of vote messages that could
# not be sent and keeps them, durably, to send later with resend(). Set it at
# start-up (see docs/ej-integration.md: a Celery task, or an outbox table).
# Without one, unsent votes are only logged.
retry_path = None


def setting(name, default=None):
    """A Django setting, else an environment variable, else default."""
    try:
        from django.conf import settings

        value = getattr(settings, name)
    except Exception:  # no Django, settings not configured, or not set
        value = os.environ.get(name)
    return default if value in (None, "") else value


def queue_url():
    url = setting("EJ_MAUTIC_QUEUE_URL")
    if not url:
        raise RuntimeError("EJ_MAUTIC_QUEUE_URL is not set")
    return url


def backfill_queue_url():
    url = setting("EJ_MAUTIC_BACKFILL_QUEUE_URL")
    if not url:
        raise RuntimeError("EJ_MAUTIC_BACKFILL_QUEUE_URL is not set")
    return url


def region(url=None):
    """The region of the queue at url (by default the votes queue's):
    EJ_MAUTIC_REGION, else the URL's, else None (boto3 then reads AWS_REGION /
    AWS_DEFAULT_REGION, and raises NoRegionError when the client is made if
    there is none)."""
    m = re.match(r"https://(?:sqs\.([a-z0-9-]+)\.amazonaws\.com|([a-z0-9-]+)\.queue\.amazonaws\.com)", url or queue_url())
    return setting("EJ_MAUTIC_REGION") or (m and (m.group(1) or m.group(2))) or None


_clients = {}
_clients_lock = threading.Lock()


def client(patient=False, url=None):
    """The SQS client for the queue at url, by default the votes queue (made
    on first use, then shared: boto3 clients are thread-safe)."""
    url = url or queue_url()
    key = (patient, url, region(url), setting("EJ_MAUTIC_ENDPOINT_URL"))
    with _clients_lock:
        if key not in _clients:
            session = boto3.session.Session()
            _clients[key] = session.client(
                "sqs", region_name=key[2], endpoint_url=key[3], config=PATIENT if patient else FAST)
        return _clients[key]


def is_fifo(url=None):
    return (url or queue_url()).endswith(".fifo")


# ----------------------------------------------------------------- messages

def mautic_id_from_request(request):
    """The Mautic contact id of the participant's own mtc_id cookie, if it is
    one (a positive integer up to 2^53-1), else None. Read it in the view that
    records the vote; never take it from a form field or another session."""
    raw = request.COOKIES.get("mtc_id", "")
    if raw.isascii() and raw.isdigit() and not raw.startswith("0") and int(raw) <= MAX_MAUTIC_ID:
        return int(raw)
    return None


def vote_message(vote, channel=None, mautic_id=None):
    """The version 1 message of an EJ vote (docs/vote.schema.json)."""
    author = vote.author                                  # adapt to your model
    created = vote.created
    if created.tzinfo is None:                            # voted_at needs a zone
        try:
            from django.utils import timezone

            created = timezone.make_aware(created)        # in settings.TIME_ZONE
        except ImportError:
            created = created.replace(tzinfo=datetime.timezone.utc)
    if not (isinstance(mautic_id, int) and 0 < mautic_id <= MAX_MAUTIC_ID):
        mautic_id = None
    return {
        "version": 1,
        "vote_id": str(vote.id),
        "conversation_id": str(vote.comment.conversation_id),
        "comment_id": str(vote.comment_id),
        "choice": int(vote.choice),                       # EJ's 1, -1 or 0
        "channel": channel,
        "voted_at": created.isoformat(),                  # 2026-11-26T12:00:00.123456+00:00
        "participant": {
            "id": str(author.id),
            "phone": getattr(author, "phone_number", None) or None,  # adapt to your model
            "email": getattr(author, "email", None) or None,
            "name": getattr(author, "name", None) or None,
            "mautic_id": mautic_id,
        },
    }


def fifo_id(s):
    """s as a MessageGroupId / MessageDeduplicationId: itself when it is 1 to
    128 characters of ASCII letters, digits and punctuation, else
    "sha256:" and its SHA-256."""
    if 0 < len(s) <= 128 and all("!" <= c <= "~" for c in s):
        return s
    return "sha256:" + hashlib.sha256(s.encode()).hexdigest()


def _key(m):
    p = m.get("participant") if isinstance(m.get("participant"), dict) else {}
    return str(m.get("conversation_id")), str(p.get("id"))


def bodies(messages, fifo=False, per_body=100):
    """Yields (body, messages in it): JSON array bodies of at most per_body
    votes and MAX_BYTES bytes, in order. With fifo, a body holds the votes of
    one participant of one conversation only: its message group."""
    groups = {}
    for m in messages:
        groups.setdefault(_key(m) if fifo else None, []).append(m)
    for group in groups.values():
        chunk, size = [], 2
        for m in group:
            n = len(json.dumps(m, separators=(",", ":")).encode()) + 1
            if chunk and (len(chunk) == per_body or size + n > MAX_BYTES):
                yield json.dumps(chunk, separators=(",", ":")), chunk
                chunk, size = [], 2
            chunk.append(m)
            size += n
        if chunk:
            yield json.dumps(chunk, separators=(",", ":")), chunk


def _entry(i, body, msgs, fifo):
    e = {"Id": str(i), "MessageBody": body}
    if fifo:
        conv, pid = _key(msgs[0])
        ids = [str(m.get("vote_id")) for m in msgs]
        e["MessageGroupId"] = fifo_id(conv + ":" + pid)
        e["MessageDeduplicationId"] = fifo_id(
            conv + ":" + (ids[0] if len(ids) == 1 else hashlib.sha256(",".join(ids).encode()).hexdigest()))
    return e


def _send_batch(sqs, url, entries, attempts=3):
    """Sends up to 10 entries with send_message_batch. Returns (refused,
    unsent): entries SQS refused as the sender's fault (a bug in the entry:
    retrying cannot help) and entries still not sent after the attempts
    (throttled, SQS or the network failing: resend them later). Backs off
    between attempts; never raises."""
    refused, pending = [], list(entries)
    for attempt in range(attempts):
        if attempt:
            time.sleep(min(0.2 * 2**attempt, 5) * random.uniform(0.5, 1))
        try:
            failed = sqs.send_message_batch(QueueUrl=url, Entries=pending).get("Failed", [])
        except Exception as e:  # botocore gave up on the call as a whole
            logger.warning("ej-mautic: send_message_batch failed (attempt %d): %s", attempt + 1, e)
            continue
        by_id = {e["Id"]: e for e in pending}
        for f in failed:
            if f.get("SenderFault"):
                logger.error("ej-mautic: SQS refused entry %s: %s %s", f["Id"], f.get("Code"), f.get("Message"))
        refused += [by_id[f["Id"]] for f in failed if f.get("SenderFault")]
        pending = [by_id[f["Id"]] for f in failed if not f.get("SenderFault")]
        if not pending:
            break
    return refused, pending


def send_messages(messages, patient=True, per_body=100, url=None):
    """Sends vote messages to the queue at url, by default the votes queue,
    batched (bodies of up to per_body votes, 10 bodies and 256 KiB a
    request). Returns (refused, unsent), lists of the messages SQS refused as
    the sender's fault and of those not sent; a failed request does not stop
    the others. patient=False makes one attempt per request, with FAST's
    timeouts."""
    url = url or queue_url()
    fifo = is_fifo(url)
    sqs, attempts = client(patient, url), 3 if patient else 1
    refused, unsent = [], []
    batch, carried, size = [], {}, 0

    def flush():
        r, u = _send_batch(sqs, url, batch, attempts)
        for e in r:
            refused.extend(carried[e["Id"]])
        for e in u:
            unsent.extend(carried[e["Id"]])

    for body, msgs in bodies(messages, fifo=fifo, per_body=per_body):
        n = len(body.encode())
        if batch and (len(batch) == 10 or size + n > MAX_BYTES):
            flush()
            batch, carried, size = [], {}, 0
        e = _entry(len(batch), body, msgs, fifo)
        batch.append(e)
        carried[e["Id"]] = msgs
        size += n
    if batch:
        flush()
    return refused, unsent


def _ids(messages):
    return ", ".join("%s/%s" % (m.get("conversation_id"), m.get("vote_id")) for m in messages)


def retry_later(messages):
    """Hands unsent messages to the retry path; never raises."""
    if not messages:
        return
    if retry_path is None:
        logger.error("ej-mautic: %d votes not queued and no retry path: %s", len(messages), _ids(messages))
        return
    try:
        retry_path(messages)
    except Exception:
        logger.exception("ej-mautic: the retry path failed; votes not queued: %s", _ids(messages))


def send_vote_safely(vote, channel=None, mautic_id=None):
    """Queues one vote; for transaction.on_commit, which runs in the
    participant's request. One quick attempt (FAST); a vote not sent goes to
    the retry path. Never raises."""
    try:
        message = vote_message(vote, channel=channel, mautic_id=mautic_id)
    except Exception:
        logger.exception("ej-mautic: cannot build the message of vote %s", getattr(vote, "id", "?"))
        return
    try:
        refused, unsent = send_messages([message], patient=False)
    except Exception:  # no queue URL, no region…
        logger.exception("ej-mautic: cannot send vote %s", message["vote_id"])
        refused, unsent = [], [message]
    if refused:
        logger.error("ej-mautic: SQS refused vote %s", _ids(refused))
    retry_later(unsent)


def resend(messages, per_body=100):
    """For the retry path: sends messages again, patiently (PATIENT, and
    _send_batch's back-off). Returns those still not sent, to keep for a
    later try; drops (and logs) those SQS refuses as the sender's fault.
    Resending is harmless: ej-mautic processes each vote once."""
    refused, unsent = send_messages(messages, patient=True, per_body=per_body)
    if refused:
        logger.error("ej-mautic: SQS refused votes, dropped: %s", _ids(refused))
    return unsent


def on_vote_created(vote, channel=None, mautic_id=None):
    """Call where a new vote is saved, with the request's
    mautic_id_from_request(request) when there is one: it is sent once the
    transaction commits (never a rolled-back vote, never before the vote is
    in the database)."""
    from django.db import transaction

    transaction.on_commit(lambda: send_vote_safely(vote, channel=channel, mautic_id=mautic_id))


# ---------------------------------------------------------------- backfill

class BackfillInterrupted(Exception):
    """Votes of a backfill could not be sent. after is where to resume: the
    last vote id of the pages sent in full, or, if none was, the after the
    backfill started from."""

    def __init__(self, message, after):
        super().__init__(message)
        self.after = after


def backfill(votes_after, after=None, rate=200, page=1000, per_body=100, channel=None, url=None,
             sleep=time.sleep, clock=time.monotonic):
    """Sends past votes to the backfill queue (EJ_MAUTIC_BACKFILL_QUEUE_URL,
    or url), at most rate votes a second, and yields (last vote id, votes
    sent) after each page of votes sent in full: keep the id to resume after it.

    votes_after(last, limit) returns the next votes, at most limit of them,
    whose id is greater than last (None: from the first), in id order.
    channel(vote), if given, is a vote's channel. Messages are batched as
    send_messages does (bodies of up to per_body votes, of one participant
    each on a FIFO queue) and sent patiently (PATIENT), at most a second's
    worth of votes per request. A vote whose message cannot be built, or that
    SQS refuses as the sender's fault, is logged and left out (retrying
    cannot help). Votes still not sent after the retries raise
    BackfillInterrupted. Sending a vote again is harmless: ej-mautic
    processes each vote_id once."""
    if not rate > 0:
        raise ValueError("rate must be a positive number of votes a second")
    url = url or backfill_queue_url()
    chunk = max(1, min(page, int(rate)))
    start, sent = clock(), 0
    while True:
        votes = votes_after(after, page)
        if not votes:
            return
        messages = []
        for vote in votes:
            try:
                messages.append(vote_message(vote, channel=channel(vote) if channel else None))
            except Exception:
                logger.exception("ej-mautic: backfill: cannot build the message of vote %s; left out", getattr(vote, "id", "?"))
        for i in range(0, len(messages), chunk):
            part = messages[i:i + chunk]
            refused, unsent = send_messages(part, patient=True, per_body=per_body, url=url)
            if refused:
                logger.error("ej-mautic: backfill: SQS refused votes, left out: %s", _ids(refused))
            if unsent:
                raise BackfillInterrupted("%d votes could not be sent to %s" % (len(unsent), url), after)
            sent += len(part)
            wait = start + sent / rate - clock()
            if wait > 0:
                sleep(wait)
        after = votes[-1].id
        yield after, len(messages)


def validator(schema_path):
    """A validator of docs/vote.schema.json for EJ's tests. jsonschema checks
    the date-time format only with rfc3339-validator installed (its format
    extras); without it an impossible date would pass."""
    import jsonschema

    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    if "date-time" not in checker.checkers:
        raise RuntimeError('jsonschema cannot check date-time: pip install "jsonschema[format-nongpl]"')
    with open(schema_path) as f:
        return jsonschema.Draft202012Validator(json.load(f), format_checker=checker)
