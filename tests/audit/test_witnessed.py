"""Signed, witnessed seal heads and inclusion proofs: the attacks of a database superuser
that a self-consistent database cannot reveal, named by verify_audit from the heads
the witness holds outside it; proofs checked offline."""

import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.utils import timezone
from prometheus_client import REGISTRY

from audit.integrity.canonical import (
    merkle_audit_path,
    merkle_leaf_hash,
    merkle_node_hash,
    merkle_root,
)
from audit.integrity.findings import ProblemKind
from audit.integrity.heads import SealHead, key_id, public_key_load
from audit.integrity.keys import keys_cache_clear, signing_key
from audit.integrity.proof import proof_problems
from audit.integrity.verification import audit_trail_verify
from audit.integrity.witnesses import FileWitness, configured_witnesses
from audit.models import AuditEvent, AuditSeal, WitnessStatus
from audit.partitions.partitioning import partitions
from audit.selectors import audit_event_proof, audit_events_search, audit_seal_head
from audit.services import audit_event_record, audit_heads_publish
from tests.audit.support import as_superuser, make_month, record, seal_everything
from tests.processes import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

REHASH = """content_hash = audit_event_content_hash_v2(
    event_id, "timestamp", session_id, event_type, actor, action, resource, metadata,
    recorded_at)"""


@pytest.fixture
def witness_path(settings) -> Path:
    return Path(settings.AUDIT_WITNESSES[0]["OPTIONS"]["path"])


@pytest.fixture
def trail(witness_path, drop_new_partitions) -> list[AuditEvent]:
    """Three seals, each head published to the witness; verified clean."""
    make_month(timezone.now())
    seal_everything()  # the partition's creation is an event of its own
    witness_path.unlink(missing_ok=True)
    events = []
    for session in ("a", "b", "c"):
        events += record(4, session_id=f"session_{session}")
        seal_everything()
    report = audit_trail_verify()
    assert report.ok, report.problems
    # At least three seals (a transaction open elsewhere on the server can split a round).
    assert report.signed == report.seals >= 3
    assert report.witnesses == {"test-file": report.seals}
    return events


def _head() -> int:
    return audit_seal_head().number


def _kinds(report) -> set[str]:
    return {problem.kind for problem in report.problems}


def _details(report) -> str:
    return "\n".join(problem.detail for problem in report.problems)


# --- the tree and the heads --------------------------------------------------------------


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962, section 2.1, as written: MTH(D[n]) splitting at k < n <= 2k."""
    if len(leaves) == 1:
        return merkle_leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle_node_hash(_reference_root(leaves[:k]), _reference_root(leaves[k:]))


def test_the_merkle_tree_is_rfc_6962s():
    for size in range(1, 40):
        leaves = [bytes([n]) * 7 for n in range(size)]
        assert merkle_root(leaves) == _reference_root(leaves), size
    # RFC 6962's test vector for the empty tree.
    assert merkle_root([]).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert len(merkle_audit_path([b"x"] * 1000, 617)) == 10


def test_every_seal_has_a_merkle_root_and_a_signed_head_the_witness_holds(trail, witness_path):
    seals = list(AuditSeal.objects.order_by("number"))
    lines = [json.loads(line) for line in witness_path.read_text().splitlines()]
    assert [line["seal"] for line in lines] == [seal.number for seal in seals]
    public = public_key_load(Path(str(signing_key_file()) + ".pub").read_bytes())
    for seal, line in zip(seals, lines, strict=True):
        head = SealHead.from_json(line)
        assert head == seal.head
        assert head.key_id == key_id(public)
        assert head.merkle_root == bytes(seal.merkle_root)
    # Publishing again sends nothing twice.
    assert [outcome.published for outcome in audit_heads_publish()] == [0]
    assert len(witness_path.read_text().splitlines()) == len(seals)


def signing_key_file() -> Path:
    from audit import conf

    return conf.signing_key_path()


# --- attacks a self-consistent database hides, named through the witness -------------------


def test_deleting_the_newest_seal_is_named(trail):
    head = _head()
    as_superuser("DELETE FROM audit_seal WHERE number = %s", [head])
    report = audit_trail_verify()
    assert f"the witness saw it, the chain ends at seal #{head - 1}" in _details(report)


def test_a_chain_rewritten_with_recomputed_hashes_and_the_key_is_named(trail):
    """The most thorough forger, even holding the signing key: change an event, rehash
    it, delete the seals and seal again. Consistent with itself; not with the witness."""
    victim = trail[1]
    where = 'event_id = %s AND "timestamp" = %s'
    as_superuser(
        f"UPDATE audit_event SET actor = 'forger' WHERE {where}",
        [victim.event_id, victim.timestamp],
    )
    as_superuser(
        f"UPDATE audit_event SET {REHASH} WHERE {where}", [victim.event_id, victim.timestamp]
    )
    as_superuser("DELETE FROM audit_seal")
    from audit.services import audit_events_seal

    audit_events_seal()  # the forger's new chain, signed; not published
    report = audit_trail_verify()
    assert _kinds(report) == {ProblemKind.BROKEN_SEAL}
    assert "the chain's seal differs from the head the witness holds" in _details(report)


def test_seals_rebuilt_without_the_key_are_named_even_without_a_witness(trail, settings):
    settings.AUDIT_WITNESSES = []
    head = _head()
    as_superuser("DELETE FROM audit_seal WHERE number = %s", [head])
    settings.AUDIT_SIGNING_KEY_FILE = ""  # the forger has no key
    keys_cache_clear()
    try:
        from audit.services import audit_events_seal

        audit_events_seal()
    finally:
        keys_cache_clear()
    settings.AUDIT_SIGNING_KEY_FILE = str(signing_key_file_default())
    report = audit_trail_verify()
    assert f"seal #{head}: not signed, though seal #{head - 1} before it was" in _details(report)


def signing_key_file_default() -> Path:
    from django.conf import settings

    return Path(settings.BASE_DIR) / "var" / "audit-signing-key.pem"


def test_a_head_forged_into_the_witness_is_named(trail, witness_path):
    lines = witness_path.read_text().splitlines()
    forged = json.loads(lines[-1])
    forged["hash"] = "00" * 32
    witness_path.write_text("\n".join([*lines[:-1], json.dumps(forged)]) + "\n")
    report = audit_trail_verify()
    assert "the head it holds has a bad signature" in _details(report)


def test_an_altered_signature_in_the_database_is_named(trail):
    as_superuser(
        "UPDATE audit_seal SET signature = decode(repeat('00', 64), 'hex') WHERE number = 2"
    )
    report = audit_trail_verify()
    assert "seal #2: its signed head does not verify" in _details(report)


def test_verification_says_when_no_witness_is_configured(trail, settings, capsys):
    settings.AUDIT_WITNESSES = []
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "No witness is configured" in out
    assert f"Signed heads verified: {_head()} of {_head()} seal(s)." in out


# --- DDL on the trail: refused, and named when forced past the guard -----------------------


def _month_of(event: AuditEvent) -> str:
    return f"audit_event_{event.timestamp:%Y}_{event.timestamp:%b}".lower()


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE {month}",
        "ALTER TABLE audit_event DETACH PARTITION {month}",
        "DROP TABLE audit_event_default",
        "ALTER TABLE audit_event DETACH PARTITION audit_event_default",
        "DROP TRIGGER audit_event_append_only ON audit_event",
        "ALTER TABLE audit_seal DISABLE TRIGGER audit_seal_append_only",
        "DROP TABLE audit_seal",
    ],
)
def test_ddl_that_would_remove_audit_data_or_guards_is_refused(trail, statement):
    month = _month_of(trail[0])
    assert month in {partition.name for partition in partitions()}
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # no help to the attacker
        try:
            with pytest.raises(DatabaseError, match="refused"):
                cursor.execute(statement.format(month=month))
        finally:
            cursor.execute("SET session_replication_role = origin")
    assert audit_trail_verify().ok


def test_a_month_dropped_past_a_disabled_ddl_guard_is_named(trail):
    month = _month_of(trail[0])
    try:
        with connection.cursor() as cursor:
            cursor.execute("ALTER EVENT TRIGGER audit_guard_drop DISABLE")
            cursor.execute("ALTER EVENT TRIGGER audit_guard_alter DISABLE")
            cursor.execute(f"ALTER TABLE audit_event DETACH PARTITION {month}")
            cursor.execute(f"DROP TABLE {month}")
        report = audit_trail_verify()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER EVENT TRIGGER audit_guard_drop ENABLE ALWAYS")
            cursor.execute("ALTER EVENT TRIGGER audit_guard_alter ENABLE ALWAYS")
    assert ProblemKind.DELETED in _kinds(report)
    assert ProblemKind.UNGUARDED in _kinds(report)
    assert ProblemKind.MISSING_PARTITION in _kinds(report)  # the current month's
    make_month(timezone.now())  # for the next tests


def test_the_default_partition_dropped_past_the_guard_is_named(trail):
    try:
        with connection.cursor() as cursor:
            cursor.execute("ALTER EVENT TRIGGER audit_guard_drop DISABLE")
            cursor.execute("ALTER EVENT TRIGGER audit_guard_alter DISABLE")
            cursor.execute("ALTER TABLE audit_event DETACH PARTITION audit_event_default")
            cursor.execute("DROP TABLE audit_event_default")
        report = audit_trail_verify()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE audit_event_default PARTITION OF audit_event DEFAULT")
            cursor.execute("SELECT audit_guard_partitions()")
            cursor.execute("ALTER EVENT TRIGGER audit_guard_drop ENABLE ALWAYS")
            cursor.execute("ALTER EVENT TRIGGER audit_guard_alter ENABLE ALWAYS")
    assert "audit_event_default: the default partition is gone" in _details(report)


# --- recording time ------------------------------------------------------------------------


def test_the_database_stamps_the_recording_time_and_backdated_events_stand_out(trail):
    week_ago = timezone.now() - timedelta(days=7)
    forged = audit_event_record(
        event_type="auth",
        action="login",
        actor="staff:mallory",
        resource="user:mallory",
        timestamp=week_ago,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT recorded_at FROM audit_event WHERE event_id = %s", [forged.event_id])
        (recorded_at,) = cursor.fetchone()
    assert recorded_at > week_ago + timedelta(days=6)
    late = audit_events_search(since=week_ago - timedelta(hours=1), recorded_late_seconds=60)
    assert [event.event_id for event in late.items] == [forged.event_id]
    # The recording time is hashed: changing it is a modified event.
    seal_everything()
    as_superuser(
        'UPDATE audit_event SET recorded_at = "timestamp" WHERE event_id = %s',
        [forged.event_id],
    )
    report = audit_trail_verify()
    assert [(p.kind, p.event_id) for p in report.problems] == [
        (ProblemKind.MODIFIED, forged.event_id)
    ]


def test_a_recording_time_sent_by_the_client_is_overwritten():
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO audit_event (event_id, "timestamp", event_type, actor, action,
                                        resource, metadata, recorded_at)
               VALUES (gen_random_uuid(), now(), 'system', 'x', 'probe', 'r', '{}',
                       '2001-01-01')
               RETURNING recorded_at"""
        )
        (recorded_at,) = cursor.fetchone()
    assert recorded_at > datetime(2026, 1, 1, tzinfo=UTC)


# --- witnesses that fail, and HTTP witnesses ----------------------------------------------


def test_a_failing_witness_is_counted_shown_and_caught_up_without_blocking_writes(
    trail, settings, tmp_path
):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the witness's directory should be")
    settings.AUDIT_WITNESSES = [
        {
            "NAME": "flaky",
            "BACKEND": "audit.integrity.witnesses.FileWitness",
            "OPTIONS": {"path": blocked / "heads.jsonl"},
        }
    ]
    labels = {"witness": "flaky"}
    before = REGISTRY.get_sample_value("sergas_audit_witness_publish_failures_total", labels) or 0
    record(2)  # writes go on
    seal_everything()
    [outcome] = audit_heads_publish()
    assert outcome.error
    assert REGISTRY.get_sample_value("sergas_audit_witness_publish_failures_total", labels) >= (
        before + 2
    )
    status = WitnessStatus.objects.get(name="flaky")
    assert status.failures >= 2
    assert status.last_error
    assert AuditEvent.objects.filter(action="witness_failing").count() == 1

    blocked.unlink()  # the witness's disk is back
    [outcome] = audit_heads_publish()
    assert (outcome.error, outcome.head) == ("", audit_seal_head().number)
    assert WitnessStatus.objects.get(name="flaky").failures == 0
    assert AuditEvent.objects.filter(action="witness_recovered").count() == 1


class _Notary(BaseHTTPRequestHandler):
    """A witness service: keeps the heads POSTed to it, answers the latest on GET."""

    heads: list[dict] = []

    def do_POST(self) -> None:
        self.heads.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(201)
        self.end_headers()

    def do_GET(self) -> None:
        if not self.heads:
            self.send_response(404)
            self.end_headers()
            return
        body = json.dumps(self.heads[-1]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


def test_an_http_witness_receives_the_heads_and_gives_the_latest_back(settings):
    _Notary.heads = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Notary)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/heads"
        settings.AUDIT_WITNESSES = [
            {
                "NAME": "notary",
                "BACKEND": "audit.integrity.witnesses.HttpWitness",
                "OPTIONS": {"url": url},
            }
        ]
        record(3)
        seal_everything()
        record(2)
        seal_everything()
        head = _head()
        assert [sent["seal"] for sent in _Notary.heads] == list(range(1, head + 1))
        [witness] = configured_witnesses()
        assert witness.latest().seal == head
        as_superuser("DELETE FROM audit_seal WHERE number = %s", [head])
        assert "the witness saw it" in _details(audit_trail_verify())
    finally:
        server.shutdown()


def test_a_file_witness_reads_its_latest_head_from_the_end(tmp_path, trail, witness_path):
    witness = FileWitness("copy", path=witness_path)
    assert witness.latest().seal == _head()
    assert [head.seal for head in witness.heads()] == list(range(1, _head() + 1))
    assert FileWitness("none", path=tmp_path / "missing.jsonl").latest() is None


# --- inclusion proofs ----------------------------------------------------------------------


def test_a_proof_from_the_api_verifies_offline_and_a_changed_byte_does_not(
    trail, agent_api, tmp_path
):
    target = trail[5]
    response = agent_api("admin").get(f"/audit/events/{target.event_id}/proof")
    assert response.status_code == 200, response.content
    proof = response.json()
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof))
    public = Path(str(signing_key_file()) + ".pub")
    checked = subprocess.run(
        [sys.executable, "-m", "audit.proof", str(path), "--public-key", str(public)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},  # no Django settings, no database
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert f"event {target.event_id} is in seal #" in checked.stdout

    tampered = json.loads(json.dumps(proof))
    tampered["event"]["canonical"] = tampered["event"]["canonical"].replace("test", "tesT", 1)
    path.write_text(json.dumps(tampered))
    refused = subprocess.run(
        [sys.executable, "-m", "audit.proof", str(path), "--public-key", str(public)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1
    assert "FAILED" in refused.stderr


def test_every_part_of_a_proof_is_checked(trail):
    keys = {key_id(signing_key().public_key()): signing_key().public_key()}
    proof = audit_event_proof(trail[9].event_id)
    assert proof_problems(proof, keys) == []
    for change in (
        lambda p: p["path"].__setitem__(0, "00" * 32),
        lambda p: p["leaf"].__setitem__("index", p["leaf"]["index"] + 1),
        lambda p: p["seal"].__setitem__("event_count", 99),
        lambda p: p["head"].__setitem__("merkle_root", "11" * 32),
        lambda p: p["head"].__setitem__("signature", p["head"]["signature"][::-1]),
    ):
        altered = json.loads(json.dumps(proof))
        change(altered)
        assert proof_problems(altered, keys), change


def test_no_proof_before_the_event_is_sealed(trail, agent_api):
    [fresh] = record(1)
    response = agent_api("admin").get(f"/audit/events/{fresh.event_id}/proof")
    assert (response.status_code, response.json()["code"]) == (409, "proof_unavailable")
    missing = agent_api("admin").get("/audit/events/00000000-0000-4000-8000-000000000000/proof")
    assert (missing.status_code, missing.json()["code"]) == (404, "audit_event_not_found")
    with pytest.raises(CommandError, match="not sealed yet"):
        call_command("audit_proof", str(fresh.event_id))


# --- keys and production settings ----------------------------------------------------------


def test_keygen_writes_an_owner_only_pair_and_never_overwrites(tmp_path, capsys):
    path = tmp_path / "keys" / "signing.pem"
    call_command("audit_keygen", str(path))
    assert path.stat().st_mode & 0o777 == 0o600
    assert Path(str(path) + ".pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert "Key id:" in capsys.readouterr().out
    with pytest.raises(CommandError, match="never overwritten"):
        call_command("audit_keygen", str(path))


def test_production_requires_a_key_and_a_witness_or_the_opt_out(settings):
    from django.core.checks import run_checks

    settings.AUDIT_SIGNING_KEY_FILE = ""
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_WITNESSES = []
    keys_cache_clear()
    try:
        ids = sorted(m.id for m in run_checks() if m.id.startswith("audit."))
        assert ids == ["audit.E001", "audit.E002"]
        settings.AUDIT_WITNESS_OPT_OUT = True
        assert not [m for m in run_checks() if m.id.startswith("audit.")]
    finally:
        keys_cache_clear()
