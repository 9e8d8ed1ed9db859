"""Drives EJ's backfill as EJ would, for producer_test.go: ej_producer.backfill
directly, and docs/ej_backfill_command.py, the management command, on stand-ins
for the few parts of Django and EJ's models it touches.

Usage: python3 run_backfill.py PRODUCER_PATH COMMAND_PATH < config.json
config: {"rows": [vote messages, each vote once], "core": conversation id,
         "command": conversation id, "rate": votes/s, "page": n, "per_body": n}
Prints one JSON object: what was sent, where, and how fast.
"""
import argparse
import datetime
import importlib.util
import json
import logging
import os
import sys
import time
import types

sys.dont_write_bytecode = True
logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
CHOICES = {"agree": 1, "disagree": -1, "skip": 0}


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------ stand-ins for Django and EJ

class CommandError(Exception):
    pass


class BaseCommand:
    def __init__(self):
        self.lines = []
        self.stdout = types.SimpleNamespace(write=self.lines.append)


class Cache(dict):
    def set(self, key, value, timeout=None):
        self[key] = value

    def delete(self, key):
        self.pop(key, None)


cache = Cache()
UTC = datetime.timezone.utc


def parse_datetime(value):
    try:
        return datetime.datetime.fromisoformat(value) if "T" in value or " " in value else None
    except ValueError:
        return None


def parse_date(value):
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


class QuerySet:
    """The queryset operations the command uses, on a list."""

    def __init__(self, rows):
        self.rows = rows

    def filter(self, **kw):
        rows = self.rows
        for k, v in kw.items():
            test = {
                "pk": lambda r: str(r.id) == str(v),
                "comment__conversation_id": lambda r: r.comment.conversation_id == v,
                "created__gte": lambda r: r.created >= v,
                "id__gt": lambda r: r.id > v,
            }[k]
            rows = [r for r in rows if test(r)]
        return QuerySet(rows)

    def select_related(self, *fields):
        return self

    def order_by(self, field):
        return QuerySet(sorted(self.rows, key=lambda r: getattr(r, field)))

    def exists(self):
        return bool(self.rows)

    def __getitem__(self, s):
        return self.rows[s]


def vote_of(m):
    """An EJ Vote as vote_message reads it (vote.author, vote.comment…)."""
    part = m["participant"]
    return types.SimpleNamespace(
        id=int(m["vote_id"]), comment_id=m["comment_id"], choice=CHOICES[m["choice"]],
        created=datetime.datetime.fromisoformat(m["voted_at"].replace("Z", "+00:00")), channel=m.get("channel"),
        comment=types.SimpleNamespace(conversation_id=m["conversation_id"]),
        author=types.SimpleNamespace(id=part["id"], email=part.get("email"), name=part.get("name"),
                                     phone_number=part.get("phone")))


cfg = json.load(sys.stdin)
votes = [vote_of(m) for m in cfg["rows"]]

stubs = {
    "django": {}, "django.core": {}, "django.core.cache": {"cache": cache}, "django.core.management": {},
    "django.core.management.base": {"BaseCommand": BaseCommand, "CommandError": CommandError},
    "django.utils": {}, "django.utils.dateparse": {"parse_date": parse_date, "parse_datetime": parse_datetime},
    "django.utils.timezone": {"is_naive": lambda d: d.tzinfo is None, "make_aware": lambda d: d.replace(tzinfo=UTC)},
    "ej_conversations": {}, "ej_conversations.models": {
        "Conversation": types.SimpleNamespace(objects=QuerySet([types.SimpleNamespace(id=c) for c in (cfg["core"], cfg["command"])])),
        "Vote": types.SimpleNamespace(objects=QuerySet(votes))},
    "ej": {}, "ej.mautic": {},
}
for name, attrs in stubs.items():
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
sys.modules["django.utils"].timezone = sys.modules["django.utils.timezone"]
p = load("ej.mautic.producer", sys.argv[1])
sys.modules["ej.mautic"].producer = p

# Every send, recorded; fail makes one of them fail.
sends, fail = [], {}


def send_messages(messages, patient=True, per_body=100, url=None):
    n = len(sends) + 1
    if fail.get("at") == n:
        fail.pop("at")
        if fail.pop("how") == "sqs":
            return [], list(messages)  # SQS unreachable after the retries
        raise KeyboardInterrupt
    sends.append({"url": url, "ids": [m["vote_id"] for m in messages]})
    return real_send(messages, patient=patient, per_body=per_body, url=url)


real_send, p.send_messages = p.send_messages, send_messages
out = {}


def sent_ids():
    return [i for s in sends for i in s["ids"]]


# 1. ej_producer.backfill: SQS fails at the third request, the backfill
# stops with where to resume; the second run resumes there.
core = QuerySet(votes).filter(comment__conversation_id=cfg["core"]).order_by("id")
want = sorted(str(v.id) for v in core.rows)


def votes_after(last, limit):
    return list((core if last is None else core.filter(id__gt=last))[:limit])


fail.update(at=3, how="sqs")
pages = []
try:
    for last, n in p.backfill(votes_after, rate=cfg["rate"], page=cfg["page"], per_body=cfg["per_body"]):
        pages.append(last)
except p.BackfillInterrupted as e:
    out["core_interrupted_after"], out["core_pages_before"] = e.after, pages
start = time.monotonic()
resumed = list(p.backfill(votes_after, after=out.get("core_interrupted_after"), rate=cfg["rate"],
                          page=cfg["page"], per_body=cfg["per_body"]))
out["core_resumed_seconds"] = round(time.monotonic() - start, 3)
out["core_resumed_sent"] = sum(n for _, n in resumed)
out["core_missing"] = sorted(set(want) - set(sent_ids()))
out["core_sent"], out["core_distinct"] = len(sent_ids()), len(set(sent_ids()))
out["core_largest_send"] = max(len(s["ids"]) for s in sends)

# 2. The management command, interrupted (Ctrl-C during its second
# request), then run again: it resumes from the checkpoint it kept.
cmd_mod = load("ejmautic_backfill", sys.argv[2])


def command(*argv):
    c = cmd_mod.Command()
    parser = argparse.ArgumentParser()
    c.add_arguments(parser)
    try:
        c.handle(**vars(parser.parse_args([str(a) for a in argv])), verbosity=1)
        return c.lines, None
    except CommandError as e:
        return c.lines, str(e)


before = len(sends)
key = "ejmautic_backfill:%s:" % cfg["command"]
fail.update(at=before + 2, how="interrupt")
args = (cfg["command"], "--rate", cfg["rate"], "--page", cfg["page"])
out["command_runs"] = [command(*args)]
out["command_checkpoint"] = cache.get(key)
out["command_runs"].append(command(*args))
out["command_checkpoint_after"] = cache.get(key)
cmd_want = sorted(str(v.id) for v in votes if v.comment.conversation_id == cfg["command"])
out["command_missing"] = sorted(set(cmd_want) - set(i for s in sends[before:] for i in s["ids"]))
out["command_resent"] = len([i for s in sends[before:] for i in s["ids"]]) - len(cmd_want)
n = len(sends)
out["command_runs"].append(command(cfg["command"], "--since", "2100-01-01"))
out["since_future_sends"] = len(sends) - n
out["command_runs"].append(command("no-such-conversation"))
out["command_runs"].append(command(cfg["command"], "--since", "yesterday"))
out["urls"] = sorted({s["url"] or "" for s in sends})
out["backfill_url"] = os.environ["EJ_MAUTIC_BACKFILL_QUEUE_URL"]
print(json.dumps(out))
