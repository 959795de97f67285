"""Audit logs (issue 12): records of every decision, a hash chain with signed checkpoints, and what
``verify_log`` finds when someone edits, deletes, reorders, truncates, forges or tears the log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capkit import AgentKey, Invocation, Keyring, Proof, Verifier, mint
from capkit.audit import AuditLog, AuditPolicy, log_lines, parse_checkpoint, verify_log
from capkit.audit.note import sign_checkpoint
from capkit.caveats import Budget, Holder, Max, OneOf, Tools
from capkit.core.errors import AuditError

from .backends import POSTGRES_URL, require_server
from .conftest import NOW, SECRET

AUDIT_KEY = AgentKey.from_seed(b"\x0a" * 32)
OTHER_KEY = AgentKey.from_seed(b"\x0b" * 32)
AGENT = AgentKey.from_seed(b"\x01" * 32)
ORIGIN = "bank.example/audit"
KEYRING = Keyring.from_secret(SECRET, key_id="k1")


def grant():
    return mint(KEYRING, Holder(AGENT.public_key), Tools("bank.transfer"), Max("amount", 50),
                OneOf("to", ["bob", "carol"]), Budget("amount", 100, "day"), location="bank", token_id=b"\x07" * 16)


def pay(verifier, token, amount, to="bob", settle=True):
    invocation = Invocation("bank.transfer", {"amount": amount, "to": to}, at=NOW)
    decision = verifier.authorize(token, invocation, Proof.create(AGENT, token, invocation, at=NOW))
    if decision and settle:
        verifier.complete(decision)
    return decision


def make_log(path: Path, records: int = 6, every: int = 4, **verifier_kwargs) -> Path:
    log = AuditLog(path, AUDIT_KEY, origin=ORIGIN, checkpoint_every=every)
    verifier = Verifier(KEYRING, location="bank", audit=log, clock=lambda: NOW, **verifier_kwargs)
    token = grant()
    for i in range(records):
        pay(verifier, token, 5 + i if i % 3 else 70)  # every third call is denied
    verifier.close()
    return path


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def check(path_or_lines, key=AUDIT_KEY, **kwargs):
    lines = lines_of(path_or_lines) if isinstance(path_or_lines, Path) else path_or_lines
    return verify_log(lines, key.public_key, **kwargs)


def records_of(path: Path) -> list[dict]:
    return [json.loads(line)["r"] for line in lines_of(path) if line.startswith(b'{"h"')]


# ------------------------------------------------------------------------- records


def test_every_decision_and_settlement_is_recorded_with_what_a_person_needs(tmp_path):
    path = make_log(tmp_path / "audit.jsonl", records=3)
    records = records_of(path)
    events = [(r["event"], r.get("allowed"), r.get("outcome")) for r in records]
    assert events == [("decision", False, None), ("decision", True, None), ("settle", None, "commit"),
                      ("decision", True, None), ("settle", None, "commit")]
    denied, allowed, settled = records[0], records[1], records[2]
    assert denied["reasons"] == [{"code": "arg_out_of_range", "caveat": 3, "hop": 0, "agent": None,
                                  "message": "amount 70 exceeds max 50"}]
    assert denied["args"] == {"amount": 70, "to": "bob"} and denied["tool"] == "bank.transfer"
    assert denied["proof"]["key"] == AGENT.public_key.text  # the agent's signed attempt, even when denied
    token = grant()
    assert allowed["token"] == token.id and allowed["hops"] == [token.id]
    assert allowed["holder"] == AGENT.public_key.fingerprint
    invocation = Invocation("bank.transfer", {"amount": 6, "to": "bob"}, at=NOW)
    from capkit.core.invocation import invocation_digest

    assert allowed["digest"] == base64.urlsafe_b64encode(invocation_digest(invocation)).rstrip(b"=").decode()
    assert allowed["reserved"]["meters"] == [{"caveat": 5, "amount": "6"}]
    assert settled["decision"] == allowed["id"] and settled["done"] is True
    assert settled["reservation"] == allowed["reserved"]["reservation"]
    # the agent's signature in the record verifies: the agent cannot deny having asked
    proof = allowed["proof"]
    from capkit.core.messages import proof_message

    signature = base64.urlsafe_b64decode(proof["sig"] + "==")
    nonce = base64.urlsafe_b64decode(proof["nonce"] + "==")
    assert AGENT.public_key.verify(signature, proof_message(token.signature, invocation_digest(invocation),
                                                            proof["at"], nonce))


def test_no_secret_is_ever_written(tmp_path):
    path = make_log(tmp_path / "audit.jsonl", records=9)
    data = path.read_bytes()
    token = grant()
    secrets_ = [token.serialize(), token.serialize()[7:40], base64.urlsafe_b64encode(token.signature).rstrip(b"="),
                token.signature.hex(), SECRET.hex(), base64.urlsafe_b64encode(SECRET).rstrip(b"="),
                KEYRING.root_key("k1", "bank").hex(), base64.b64encode(KEYRING.root_key("k1", "bank")),
                (b"\x01" * 32).hex(), (b"\x0a" * 32).hex(), base64.urlsafe_b64encode(b"\x0a" * 32).rstrip(b"=")]
    for secret in secrets_:
        needle = secret if isinstance(secret, bytes) else secret.encode()
        assert needle not in data


def test_redaction_keeps_hashes_or_drops_and_then_leaves_out_the_sentences(tmp_path):
    policy = AuditPolicy({"to": "hash", "memo": "drop"}, hash_key=b"k" * 16)
    log = AuditLog(tmp_path / "a.jsonl", AUDIT_KEY, origin=ORIGIN)
    verifier = Verifier(KEYRING, location="bank", audit=log, audit_policy=policy, clock=lambda: NOW)
    token = grant()
    for to in ("bob", "mallory"):
        invocation = Invocation("bank.transfer", {"amount": 5, "to": to, "memo": "rent"}, at=NOW)
        verifier.authorize(token, invocation, Proof.create(AGENT, token, invocation, at=NOW))
    verifier.close()
    allowed, denied = records_of(tmp_path / "a.jsonl")
    assert allowed["args"] == {"amount": 5} and allowed["args_dropped"] == ["memo"]
    expected = base64.urlsafe_b64encode(hmac.new(b"k" * 16, b'"bob"', hashlib.sha256).digest()).rstrip(b"=")
    assert allowed["args_hashed"] == {"to": expected.decode()}
    assert denied["reasons"] == [{"code": "arg_not_allowed", "caveat": 4, "hop": 0, "agent": None}]
    data = (tmp_path / "a.jsonl").read_bytes()
    assert b"mallory" not in data and b"rent" not in data and b"bob" not in data


def test_a_policy_is_checked_when_made():
    with pytest.raises(AuditError):
        AuditPolicy({"to": "hash"})  # hashing needs a key
    with pytest.raises(AuditError):
        AuditPolicy({"to": "encrypt"})
    with pytest.raises(AuditError):
        AuditPolicy(default="forget")


class _FailingSink:
    def __init__(self):
        self.fail = True
        self.records = []

    def write(self, record):
        if self.fail:
            raise OSError("disk full")
        self.records.append(record)

    def close(self):
        pass


def test_a_call_whose_record_cannot_be_written_is_denied_and_spends_nothing():
    sink = _FailingSink()
    verifier = Verifier(KEYRING, location="bank", audit=sink, clock=lambda: NOW)
    token = grant()
    decision = pay(verifier, token, 40, settle=False)
    assert not decision and decision.codes == ("audit_unavailable",)
    assert "OSError" in decision.explain() and "disk full" not in decision.explain()
    (status,) = verifier.budgets(token, at=NOW)
    assert status.committed == 0 and status.reserved == 0  # the reservation was given back
    sink.fail = False
    assert pay(verifier, token, 40)  # the budget is whole


def test_a_settlement_whose_record_fails_still_settles_and_says_so():
    sink = _FailingSink()
    sink.fail = False
    verifier = Verifier(KEYRING, location="bank", audit=sink, clock=lambda: NOW)
    token = grant()
    decision = pay(verifier, token, 40, settle=False)
    sink.fail = True
    with pytest.raises(AuditError, match="the commit stands"):
        verifier.complete(decision)
    (status,) = verifier.budgets(token, at=NOW)
    assert status.committed == 40 and status.reserved == 0


def test_bad_audit_arguments_are_refused():
    with pytest.raises(Exception) as raised:
        Verifier(KEYRING, location="bank", audit=object())
    assert raised.type.__name__ == "CapkitError"
    with pytest.raises(AuditError):
        AuditLog("/tmp/x.jsonl", object(), origin=ORIGIN)
    with pytest.raises(AuditError):
        AuditLog("/tmp/x.jsonl", AUDIT_KEY, origin="has space")


# ------------------------------------------------------------------------ verifying


def test_an_untouched_log_verifies(tmp_path):
    path = make_log(tmp_path / "audit.jsonl", records=9)
    report = check(path)
    assert report.intact and report.records == 15 and report.checkpoints == 4 and report.unsigned == 0
    assert report.head is not None and parse_checkpoint(report.head).size == report.lines - 1


@pytest.mark.parametrize("line_index", [0, 3, 6])
def test_an_edited_record_is_found(tmp_path, line_index):
    path = make_log(tmp_path / "audit.jsonl")
    lines = lines_of(path)
    assert lines[line_index].startswith(b'{"h"')
    lines[line_index] = lines[line_index].replace(b'"amount":', b'"amount":1', 1)
    report = check(lines)
    assert not report.intact and report.bad_line == line_index + 2
    assert "edited" in report.problem


def test_editing_and_rechaining_everything_after_is_caught_by_the_next_checkpoint(tmp_path):
    from capkit.audit.lines import checkpoint_line, line_hash, parse_line

    path = make_log(tmp_path / "audit.jsonl")
    lines = [line[:-1] for line in lines_of(path)]
    lines[0] = lines[0].replace(b'"amount":70', b'"amount":7')
    for i in range(1, len(lines)):  # recompute every prev after the edit, as a careful forger would
        chain = parse_line(lines[i])
        if chain.note is None:
            lines[i] = lines[i].replace(chain.prev.encode(), line_hash(lines[i - 1]).encode(), 1)
        else:  # a checkpoint: its chain fields can be redone, its note cannot be re-signed without the key
            lines[i] = checkpoint_line(chain.note, line_hash(lines[i - 1]), chain.seq)
    report = check([line + b"\n" for line in lines])
    assert not report.intact and report.bad_line == 5 and "does not sign the lines before it" in report.problem


def test_deleted_lines_are_found(tmp_path):
    path = make_log(tmp_path / "audit.jsonl")
    lines = lines_of(path)
    del lines[2]
    report = check(lines)
    assert not report.intact and report.bad_line == 3 and "missing" in report.problem


def test_reordered_lines_are_found(tmp_path):
    path = make_log(tmp_path / "audit.jsonl")
    lines = lines_of(path)
    lines[1], lines[2] = lines[2], lines[1]
    report = check(lines)
    assert not report.intact and report.bad_line == 2


def test_an_inserted_line_is_found(tmp_path):
    path = make_log(tmp_path / "audit.jsonl")
    lines = lines_of(path)
    lines.insert(2, b'{"note":"nothing happened here"}\n')
    report = check(lines)
    assert not report.intact and report.bad_line == 3 and "inserted" in report.problem


def test_truncation_is_found_against_a_head_kept_elsewhere(tmp_path):
    path = make_log(tmp_path / "audit.jsonl", records=9)
    kept = check(path).head
    lines = lines_of(path)
    assert check(lines[:-3]).intact  # without the head, cutting the end off cannot be seen ...
    report = check(lines[:-3], head=kept)
    assert not report.intact and "truncated" in report.problem  # ... with it, it can
    assert check(lines, head=kept).intact


def test_a_log_rewritten_under_a_kept_head_is_found(tmp_path):
    first = make_log(tmp_path / "one.jsonl", records=9)
    kept = check(first).head
    second = make_log(tmp_path / "two.jsonl", records=9)  # same key, another history
    report = check(second, head=kept)
    assert not report.intact and ("rewritten" in report.problem or "truncated" in report.problem)


def test_a_forged_checkpoint_is_found(tmp_path):
    path = make_log(tmp_path / "audit.jsonl")
    lines = lines_of(path)
    index = next(i for i, line in enumerate(lines) if line.startswith(b'{"c"'))
    doc = json.loads(lines[index])
    checkpoint = parse_checkpoint(doc["c"])
    forged = sign_checkpoint(ORIGIN, checkpoint.size, checkpoint.head, OTHER_KEY)
    from capkit.audit.lines import checkpoint_line

    lines[index] = checkpoint_line(forged, doc["h"]["prev"], doc["h"]["seq"]) + b"\n"
    report = check(lines)
    assert not report.intact and report.bad_line == index + 1 and "signature" in report.problem


def test_a_log_signed_with_another_key_is_refused(tmp_path):
    path = make_log(tmp_path / "audit.jsonl")
    report = check(path, key=OTHER_KEY)  # the audit key was swapped: checkpoints do not verify
    assert not report.intact and "signature" in report.problem


def test_a_checkpoint_of_another_log_is_refused(tmp_path):
    path = make_log(tmp_path / "audit.jsonl")
    report = check(path, origin="mail.example/audit")
    assert not report.intact and "another log" in report.problem


def test_a_torn_last_line_is_torn_not_tampered(tmp_path):
    path = make_log(tmp_path / "audit.jsonl")
    data = path.read_bytes()
    path.write_bytes(data[:-40])  # the last line cut short, as a writer killed mid-write leaves it
    report = check(path)
    assert report.intact and report.torn == (len(lines_of(path)),)
    assert "torn" in report.summary()


def test_the_next_writer_ends_a_torn_line_and_the_chain_continues_past_it(tmp_path):
    path = make_log(tmp_path / "audit.jsonl", records=3)
    lines = lines_of(path)
    cut = lines[-1][: len(lines[-1]) // 2]
    path.write_bytes(b"".join(lines[:-1]) + cut)
    make_log(path, records=3)  # another process appends
    report = check(path)
    assert report.intact and report.torn == (len(lines),) and report.records > 5


def test_a_partial_line_that_no_writer_could_have_left_is_tampering(tmp_path):
    path = make_log(tmp_path / "audit.jsonl", records=3)
    lines = lines_of(path)
    lines[1] = b'{"h":{"prev":"' + b"B" * 43 + b'","seq":1\n'
    report = check(lines)
    assert not report.intact


def test_verifying_needs_the_audit_public_key():
    with pytest.raises(AuditError):
        verify_log([], "capkit_pk_x")


def _append_many(path: str, n: int, log_name: str | None = None) -> None:
    """One of several processes appending ``n`` records: to the file ``path``, or to a PostgreSQL log."""
    if log_name is None:
        log = AuditLog(path, AUDIT_KEY, origin=ORIGIN, checkpoint_every=50)
    else:
        from capkit.audit import PostgresAuditLog

        log = PostgresAuditLog(path, AUDIT_KEY, log=log_name, origin=ORIGIN, checkpoint_every=40)
    verifier = Verifier(KEYRING, location="bank", audit=log, allow_bearer=True)
    token = mint(KEYRING, Tools("t"), location="bank")
    for i in range(n):
        verifier.authorize(token, Invocation("t", {"i": i}))
    verifier.close()


def test_eight_processes_append_to_one_file_without_losing_a_record(tmp_path):
    path = tmp_path / "audit.jsonl"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(path), 150)) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    report = check(path)
    assert report.intact and report.records == 8 * 150 and report.torn == ()
    assert sorted(r["args"]["i"] for r in records_of(path)) == sorted(list(range(150)) * 8)


_KILLED_WRITER = """
import sys
from capkit import AgentKey, Invocation, Keyring, Verifier, mint
from capkit.audit import AuditLog
from capkit.caveats import Tools
log = AuditLog(sys.argv[1], AgentKey.from_seed(b"\\x0a" * 32), origin="bank.example/audit", checkpoint_every=100)
keyring = Keyring.from_secret(bytes.fromhex(sys.argv[2]), key_id="k1")
verifier = Verifier(keyring, location="bank", audit=log, allow_bearer=True)
token = mint(keyring, Tools("t"), location="bank")
print("ready", flush=True)
while True:
    verifier.authorize(token, Invocation("t", {"blob": "x" * 200000}))
"""


def test_a_writer_killed_mid_write_leaves_at_most_a_torn_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path), SECRET.hex()],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(10)
    before = check(path)
    assert before.intact and len(before.torn) <= 1
    make_log(path, records=3)
    after = check(path)
    assert after.intact and after.records == before.records + 5 and after.torn == before.torn


# ---------------------------------------------------------------------- PostgreSQL


def test_eight_processes_share_one_postgres_log(tmp_path):
    url = require_server("postgres") + "?schema=capkit_audit_test"
    name = "test-" + base64.urlsafe_b64encode(os.urandom(9)).decode()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(url, 60, name)) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(180)
        assert worker.exitcode == 0
    lines = list(log_lines(url, log=name))
    report = check(lines)
    assert report.intact and report.records == 8 * 60 and report.checkpoints >= 8
    # the same bytes as a file log: export and verify as a file
    (tmp_path / "export.jsonl").write_bytes(b"".join(lines))
    assert check(tmp_path / "export.jsonl").intact


def test_postgres_lines_are_append_only(tmp_path):
    import psycopg

    from capkit.audit import PostgresAuditLog

    url = require_server("postgres")
    name = "test-" + base64.urlsafe_b64encode(os.urandom(9)).decode()
    log = PostgresAuditLog(url + "?schema=capkit_audit_test", AUDIT_KEY, log=name, origin=ORIGIN)
    log.write({"v": 1, "event": "decision", "note": "x"})
    log.close()
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in ("UPDATE capkit_audit_test.lines SET line = 'x' WHERE log = %s",
                          "DELETE FROM capkit_audit_test.lines WHERE log = %s"):
            with pytest.raises(psycopg.Error, match="append-only"):
                conn.execute(statement, (name,))
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute("TRUNCATE capkit_audit_test.lines")
    assert check(list(log_lines(url + "?schema=capkit_audit_test", log=name))).intact


def test_postgres_log_errors_name_no_password():
    from capkit.audit import PostgresAuditLog

    with pytest.raises(AuditError) as raised:
        PostgresAuditLog("postgresql://u:hunter2@127.0.0.1:1/x", AUDIT_KEY, log="x", timeout=1)
    assert "hunter2" not in raised.value.message and "***" in raised.value.message


# ------------------------------------------------------------------- OpenTelemetry


def test_each_decision_is_a_span_with_the_same_attributes():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from capkit.audit import OpenTelemetrySink

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    verifier = Verifier(KEYRING, location="bank", audit=OpenTelemetrySink(provider.get_tracer("t")),
                        clock=lambda: NOW)
    token = grant()
    pay(verifier, token, 70)
    pay(verifier, token, 5)
    denied, allowed, settled = exporter.get_finished_spans()
    assert denied.name == "capkit.decision" and denied.status.status_code.name == "ERROR"
    assert denied.attributes["capkit.reason.codes"] == ("arg_out_of_range",)
    assert denied.attributes["capkit.reason.caveats"] == (3,)
    assert allowed.attributes["capkit.allowed"] is True and allowed.attributes["capkit.token"] == token.id
    assert allowed.attributes["capkit.proof.key"] == AGENT.public_key.text
    assert settled.name == "capkit.settle" and settled.attributes["capkit.outcome"] == "commit"
    for span in (denied, allowed, settled):
        assert not any("amount" in str(v) and "70" in str(v) for v in span.attributes.values())
        assert token.serialize() not in str(dict(span.attributes))


# ---------------------------------------------------------------- the integrations


def test_a_guarded_tool_is_recorded_without_the_adapter_doing_anything(tmp_path):
    from capkit.integrations.guard import guard

    log = AuditLog(tmp_path / "a.jsonl", AUDIT_KEY, origin=ORIGIN)
    verifier = Verifier(KEYRING, location="bank", audit=log)
    token = grant()

    @guard(verifier, tool="bank.transfer")
    def transfer(amount: int, to: str) -> str:
        return "sent"

    from capkit.integrations.credentials import Credentials

    assert transfer(5, "bob", capkit=Credentials(token, AGENT)) == "sent"
    verifier.close()
    events = [(r["event"], r.get("allowed"), r.get("outcome")) for r in records_of(tmp_path / "a.jsonl")]
    assert events == [("decision", True, None), ("settle", None, "commit")]


# ------------------------------------------------------------ any tampering, anywhere

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_LOG_LINES: list[bytes] = []


def _pristine(tmp_dir: Path) -> list[bytes]:
    """One real log (records and checkpoints, the last line a checkpoint), made once."""
    if not _LOG_LINES:
        _LOG_LINES.extend(lines_of(make_log(tmp_dir / "pristine.jsonl", records=7, every=3)))
    return list(_LOG_LINES)


_mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10**6)),
    st.tuples(st.just("swap"), st.integers(0, 10**6), st.integers(0, 10**6)),
    st.tuples(st.just("duplicate"), st.integers(0, 10**6)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(max_size=40)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_mutations)
def test_any_change_before_the_last_checkpoint_is_found_and_nothing_crashes(tmp_path, mutation):
    """Flip any byte, delete, swap, duplicate or insert any line of a checkpointed log: verify_log answers
    (never raises), and any change to what the last checkpoint covers is reported with the line it breaks."""
    lines = _pristine(tmp_path)
    last = max(i for i, line in enumerate(lines) if line.startswith(b'{"c":'))  # the last checkpoint
    kind, *where = mutation
    changed = list(lines)
    if kind == "flip":
        i = where[0] % len(changed)
        line = bytearray(changed[i])
        j = where[1] % (len(line) - 1)  # not the newline
        line[j] ^= where[2]
        changed[i] = bytes(line)
    elif kind == "delete":
        i = where[0] % len(changed)
        del changed[i]
    elif kind == "swap":
        i, j = where[0] % len(changed), where[1] % len(changed)
        changed[i], changed[j] = changed[j], changed[i]
    elif kind == "duplicate":
        i = where[0] % len(changed)
        changed.insert(i, changed[i])
    else:
        i = where[0] % (len(changed) + 1)
        changed.insert(i, where[1] + b"\n")
    report = verify_log(changed, AUDIT_KEY.public_key, origin=ORIGIN)
    if changed == lines:
        assert report.intact
        return
    covered_changed = changed[: last + 1] != lines[: last + 1]
    if covered_changed and not (kind == "delete" and i == len(lines) - 1 == last):
        # found: the chain breaks at a named line, or the inserted bytes are reported as a torn fragment (a
        # cut-short write, which changes no record: every record and checkpoint still chains)
        found = not report.intact and report.bad_line is not None and report.problem
        assert found or (kind == "insert" and report.torn), (kind, where, report)
