"""Drives docs/ej_producer.py as EJ would, for producer_test.go.

Usage: python3 run_producer.py MODULE_PATH < config.json
config: {"schema": path, "rows": [vote messages, redeliveries included],
         "malformed": [messages the consumer refuses], "request_path": n,
         "per_body": n, "slow_endpoint": url}
Prints one JSON object: what was sent and what the schema said.
"""
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

spec = importlib.util.spec_from_file_location("ej_producer", sys.argv[1])
p = importlib.util.module_from_spec(spec)
spec.loader.exec_module(p)
cfg = json.load(sys.stdin)
CHOICES = {"agree": 1, "disagree": -1, "skip": 0}


def vote_of(m, naive=False):
    """An EJ Vote as vote_message reads it (vote.author, vote.comment…)."""
    part = m["participant"]
    created = datetime.datetime.fromisoformat(m["voted_at"])
    if naive:  # as Django gives it with USE_TZ off: vote_message adds the zone
        created = created.replace(tzinfo=None)
    return types.SimpleNamespace(
        id=int(m["vote_id"]), comment_id=m["comment_id"], choice=CHOICES[m["choice"]], created=created,
        comment=types.SimpleNamespace(conversation_id=m["conversation_id"]),
        author=types.SimpleNamespace(id=part["id"], email=part.get("email"), name=part.get("name"),
                                     phone_number=part.get("phone")))


out = {"python": sys.version.split()[0], "boto3": p.boto3.__version__}
import botocore  # noqa: E402
import jsonschema  # noqa: E402
import importlib.metadata  # noqa: E402

out["botocore"] = botocore.__version__
out["jsonschema"] = importlib.metadata.version("jsonschema")
v = p.validator(cfg["schema"])
rows = cfg["rows"]
messages = [p.vote_message(vote_of(m, naive=i % 2 == 1), channel=m.get("channel")) for i, m in enumerate(rows)]
out["invalid_rows"] = sum(1 for m in messages if list(v.iter_errors(m)))
# Where the schema points for each malformed message: at the field.
out["malformed_errors"] = []
for m in cfg["malformed"]:
    e = jsonschema.exceptions.best_match(v.iter_errors(m))
    out["malformed_errors"].append("/".join(map(str, e.absolute_path)) + ": " + e.message[:80])

collected = []
p.retry_path = collected.extend

# 1. The request path: one vote at a time, as transaction.on_commit would.
k = cfg["request_path"]
for m in rows[:k]:
    p.send_vote_safely(vote_of(m), channel=m.get("channel"))
out["request_path_sent"] = k - len(collected)

# 2. SQS hangs: the request is not held longer than FAST's timeouts; the
# vote goes to the retry path, which sends it once SQS answers again.
os.environ["EJ_MAUTIC_ENDPOINT_URL"], good = cfg["slow_endpoint"], os.environ["EJ_MAUTIC_ENDPOINT_URL"]
start = time.monotonic()
p.send_vote_safely(vote_of(rows[k]), channel=rows[k].get("channel"))
out["slow_sqs_seconds"] = round(time.monotonic() - start, 2)
out["retry_path_got"] = len(collected)
os.environ["EJ_MAUTIC_ENDPOINT_URL"] = good
out["resend_unsent"] = len(p.resend(collected))

# 3. A backfill of the rest, batched, with the malformed messages among them.
rest = messages[k + 1:]
step = max(1, len(rest) // (len(cfg["malformed"]) + 1))
for i, bad in enumerate(cfg["malformed"]):
    rest.insert((i + 1) * step, bad)
fifo = p.is_fifo()
bodies = list(p.bodies(rest, fifo=fifo, per_body=cfg["per_body"]))
out["bodies"] = len(bodies)
out["bodies_with_invalid"] = sum(1 for _, msgs in bodies if any(list(v.iter_errors(m)) for m in msgs))
out["mixed_participants_in_a_body"] = sum(1 for _, msgs in bodies if len({p._key(m) for m in msgs}) > 1)
refused, unsent = p.send_messages(rest, per_body=cfg["per_body"])
out["refused"], out["unsent"] = len(refused), len(unsent)
print(json.dumps(out))
