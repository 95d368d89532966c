"""Seals list every committed event exactly once, in a chain, without writers locking."""

import itertools
import random
import threading
import time
from collections import Counter

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, transaction

from audit.integrity.canonical import GENESIS_HASH, decode_members, seal_hash, timestamp_micros
from audit.integrity.verification import audit_trail_verify
from audit.models import AuditEvent, AuditSeal
from audit.services import audit_event_record, audit_events_seal
from tests.audit.support import record, seal_everything

pytestmark = pytest.mark.django_db(transaction=True)


def _sealed_keys() -> Counter:
    return Counter(
        (member.event_id, member.micros)
        for seal in AuditSeal.objects.order_by("number")
        for member in decode_members(bytes(seal.members))
    )


def _keys(events) -> set:
    return {(event.event_id, timestamp_micros(event.timestamp)) for event in events}


def _other_connection() -> psycopg.Connection:
    return psycopg.connect(**connection.get_connection_params())


def test_nothing_to_seal_makes_no_seal():
    seal_everything()
    assert audit_events_seal() == []


def test_a_seal_lists_every_committed_event_once_and_links_to_the_previous_one():
    first = record(3)
    seal_everything()
    second = record(2)
    seal_everything()
    seals = list(AuditSeal.objects.order_by("number"))
    assert [seal.number for seal in seals] == list(range(1, len(seals) + 1))
    assert bytes(seals[0].previous_hash) == GENESIS_HASH
    assert seals[0].xact_from == 0
    for before, after in itertools.pairwise(seals):
        assert bytes(after.previous_hash) == bytes(before.hash)
        assert after.xact_from == before.xact_to
    for seal in seals:
        assert seal_hash(seal.header) == bytes(seal.hash)
    sealed = _sealed_keys()
    assert set(sealed) == _keys(AuditEvent.objects.all())
    assert _keys(first + second) <= set(sealed)
    assert max(sealed.values()) == 1


def test_an_older_transaction_committing_late_lands_in_a_later_seal():
    with _other_connection() as slow:
        # The slow transaction inserts first, so its id is older, and stays open.
        slow.execute(
            'INSERT INTO audit_event (event_id, "timestamp", event_type, actor, action,'
            " resource, metadata) VALUES (gen_random_uuid(), now(), 'system', 'slow',"
            " 'probe', 'r', '{}')"
        )
        (quick,) = record(1, actor="quick")  # younger, committed at once
        audit_events_seal()
        assert (quick.event_id, timestamp_micros(quick.timestamp)) not in _sealed_keys()
        slow.commit()
    seal_everything()
    sealed = _sealed_keys()
    assert _keys(AuditEvent.objects.filter(actor__in=["slow", "quick"])) <= set(sealed)
    assert max(sealed.values()) == 1


def test_a_transaction_open_in_another_database_does_not_hold_seals_back():
    """Transaction ids are the server's: a long write elsewhere (a load into another
    database of the same server) is older than this database's events, yet cannot add
    to them, so it must not stall sealing."""
    params = {**connection.get_connection_params(), "dbname": "postgres"}
    with psycopg.connect(**params) as elsewhere:
        elsewhere.execute("SELECT pg_current_xact_id()")  # an id, older than what follows
        events = record(2, actor="here")
        audit_events_seal()
        assert _keys(events) <= set(_sealed_keys())
        elsewhere.rollback()


def test_a_rolled_back_event_is_never_sealed():
    @transaction.atomic
    def record_then_fail() -> None:
        record(1, actor="ghost")
        raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        record_then_fail()
    record(1, actor="kept")
    seal_everything()
    assert not AuditEvent.objects.filter(actor="ghost").exists()
    assert sum(_sealed_keys().values()) == AuditEvent.objects.count()


def test_seals_are_cut_at_transaction_boundaries_never_inside_one():
    with transaction.atomic():
        big = record(5, actor="big")
    record(3, actor="single")
    seal_everything(max_events=2)
    for seal in AuditSeal.objects.all():
        members = {(m.event_id, m.micros) for m in decode_members(bytes(seal.members))}
        if members & _keys(big):
            assert members >= _keys(big)  # the five share one seal, above the cap
    assert sum(_sealed_keys().values()) == AuditEvent.objects.count()
    assert audit_trail_verify().ok


def test_concurrent_writers_and_sealers_seal_every_event_exactly_once(run_concurrently):
    """Writers commit out of transaction-id order (random sizes and pauses inside their
    transactions) while two sealers run the whole time; no writer waits on a sealer."""
    stop = threading.Event()
    written: list[AuditEvent] = []
    lock = threading.Lock()

    def writer(seed: int) -> int:
        rng = random.Random(seed)
        for _ in range(25):
            with transaction.atomic():
                batch = []
                for _ in range(rng.randint(1, 4)):
                    batch.append(
                        audit_event_record(
                            event_type="tool", action="post_tool", actor=f"w{seed}", resource="r"
                        )
                    )
                    time.sleep(rng.random() * 0.004)
            with lock:
                written.extend(batch)
        return seed

    def sealer() -> None:
        try:
            while not stop.is_set():
                audit_events_seal(max_events=7)
                time.sleep(0.002)
        finally:
            connection.close()

    sealers = [threading.Thread(target=sealer) for _ in range(2)]
    for thread in sealers:
        thread.start()
    try:
        results = run_concurrently([lambda seed=seed: writer(seed) for seed in range(6)])
    finally:
        stop.set()
        for thread in sealers:
            thread.join()
    assert results == list(range(6)), results
    seal_everything()

    sealed = _sealed_keys()
    assert max(sealed.values()) == 1  # none twice
    assert set(sealed) == _keys(AuditEvent.objects.all())  # none missing, none invented
    assert _keys(written) <= set(sealed)
    assert AuditSeal.objects.count() > 1
    report = audit_trail_verify()
    assert report.ok, report.problems
    assert report.events == AuditEvent.objects.count()
    assert report.unsealed == 0


def test_the_seal_command_prints_each_new_seal(capsys):
    record(2)
    seal_everything()
    record(1)
    for _ in range(200):
        call_command("seal_audit")
        out = capsys.readouterr().out
        if "Seal #" in out:
            break
        time.sleep(0.05)
    assert "event(s), hash " in out
    call_command("seal_audit")
    assert "Nothing to seal" in capsys.readouterr().out
