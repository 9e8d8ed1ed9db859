"""python manage.py ejmautic_backfill CONVERSATION_ID [--since DATE] [--rate N] [--after VOTE_ID] [--restart]

Sends the past votes of one conversation to ej-mautic's backfill queue
(docs/ej-integration.md, "Backfilling past votes"). Copy this file into EJ as
<an app>/management/commands/ejmautic_backfill.py and adapt the lines marked
"adapt": EJ's models, and where docs/ej_producer.py was copied. Run it once
the conversation's connection is connected (GET .../mautic).

It reads the conversation's votes in id order, a page at a time, and sends
them with ej_producer.backfill: JSON array bodies of up to 100 votes (one
participant's on a FIFO queue), at most --rate votes a second. After each page
it keeps the last vote id sent in Django's cache: an interrupted run (Ctrl-C,
a deploy, SQS failing) resumes after it when run again with the same
arguments, or after --after. Sending a vote twice is harmless: ej-mautic
processes each vote_id once.
"""
import datetime

from django.core.cache import cache
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ej.mautic import producer as ej_producer  # adapt: where docs/ej_producer.py was copied
from ej_conversations.models import Conversation, Vote  # adapt: EJ's models


def parse_since(value):
    """--since: an ISO 8601 date-time, or a date (its midnight); naive ones
    in settings.TIME_ZONE."""
    if not value:
        return None
    when = parse_datetime(value)
    if when is None:
        day = parse_date(value)
        when = day and datetime.datetime.combine(day, datetime.time.min)
    if when is None:
        raise CommandError("--since %r is not an ISO 8601 date or date-time" % value)
    return timezone.make_aware(when) if timezone.is_naive(when) else when


class Command(BaseCommand):
    help = "Send a conversation's past votes to ej-mautic's backfill queue (EJ_MAUTIC_BACKFILL_QUEUE_URL)."

    def add_arguments(self, parser):
        parser.add_argument("conversation_id")
        parser.add_argument("--since", help="only the votes made at or after this date or date-time (ISO 8601)")
        parser.add_argument("--rate", type=float, default=200, help="votes a second at most (default 200)")
        parser.add_argument("--after", type=int, help="resume after this vote id (what an interrupted run printed)")
        parser.add_argument("--restart", action="store_true", help="ignore the kept checkpoint: from the first vote")
        parser.add_argument("--page", type=int, default=1000, help="votes read from the database at a time")

    def handle(self, *args, conversation_id, since=None, rate=200, after=None, restart=False, page=1000, **options):
        if not rate > 0 or page < 1:
            raise CommandError("--rate and --page must be positive")
        if not Conversation.objects.filter(pk=conversation_id).exists():
            raise CommandError("no conversation %s" % conversation_id)
        since = parse_since(since)
        votes = (Vote.objects.filter(comment__conversation_id=conversation_id)  # adapt: EJ's vote → conversation
                 .select_related("author", "comment")  # adapt: and where the author's phone is
                 .order_by("id"))
        if since:
            votes = votes.filter(created__gte=since)
        key = "ejmautic_backfill:%s:%s" % (conversation_id, since.isoformat() if since else "")
        if after is None and not restart:
            after = cache.get(key)
            if after is not None:
                self.stdout.write("resuming after vote %s (kept from an interrupted run; --restart starts over)" % after)

        def votes_after(last, limit):
            return list((votes if last is None else votes.filter(id__gt=last))[:limit])

        sent, last = 0, after
        try:
            for last, n in ej_producer.backfill(votes_after, after=after, rate=rate, page=page,
                                                 channel=lambda vote: getattr(vote, "channel", None)):  # adapt
                sent += n
                cache.set(key, last, timeout=None)
                self.stdout.write("%d votes sent, through vote %s" % (sent, last))
        except ej_producer.BackfillInterrupted as e:
            raise CommandError("%s after %d votes: run again to resume after vote %s (or --after %s)"
                               % (e, sent, e.after, e.after))
        except KeyboardInterrupt:
            raise CommandError("interrupted after %d votes: run again to resume after vote %s (or --after %s)"
                               % (sent, last, last))
        cache.delete(key)
        self.stdout.write("conversation %s: %d votes sent to the backfill queue" % (conversation_id, sent))
