import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from access.exceptions import InvalidScopes, InvalidToken, InvalidTokenName, TokenRevoked
from access.models import AgentToken, IdempotencyRecord
from access.services import (
    agent_token_authenticate,
    agent_token_create,
    agent_token_revoke,
    idempotency_records_prune,
)
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


class TestIssue:
    def test_a_token_is_shown_once_and_only_its_hash_is_stored(self):
        issued = agent_token_create(name="reviewer-1", scopes=["write"], actor="staff:ana")
        token = AgentToken.objects.get()
        assert issued.secret.startswith(f"sgs_{token.prefix}_")
        assert issued.secret not in str(AgentToken.objects.values().get())
        assert token.secret_hash == hashlib.sha256(issued.secret.encode()).hexdigest()
        assert token.actor == "agent:reviewer-1"
        event = AuditEvent.objects.get(action="token_create")
        assert (event.event_type, event.actor, event.resource) == (
            "auth",
            "staff:ana",
            f"agent_token:{token.prefix}",
        )
        assert event.metadata == {
            "name": "reviewer-1",
            "scopes": ["write"],
            "own_sessions_only": False,
            "queues": [],
        }

    def test_each_scope_includes_the_ones_below_it(self):
        assert agent_token_create(name="a", scopes=["read"]).token.effective_scopes == {"read"}
        assert agent_token_create(name="a", scopes=["write"]).token.effective_scopes == {
            "read",
            "write",
        }
        assert agent_token_create(name="a", scopes=["admin"]).token.effective_scopes == {
            "read",
            "write",
            "admin",
        }

    @pytest.mark.parametrize("name", ["", "has space", "x" * 65, "semi;colon"])
    def test_an_invalid_agent_name_is_refused(self, name):
        with pytest.raises(InvalidTokenName):
            agent_token_create(name=name)

    @pytest.mark.parametrize("scopes", [[], ["root"], ["read", "sudo"]])
    def test_unknown_or_missing_scopes_are_refused(self, scopes):
        with pytest.raises(InvalidScopes):
            agent_token_create(name="a", scopes=scopes)
        assert AgentToken.objects.count() == 0


class TestAuthenticate:
    def test_the_issued_token_authenticates_and_records_its_use(self):
        issued = agent_token_create(name="a")
        assert agent_token_authenticate(issued.secret) == issued.token
        assert AgentToken.objects.get().last_used_at is not None

    def test_use_is_written_at_most_once_per_interval(self):
        issued = agent_token_create(name="a")
        agent_token_authenticate(issued.secret)
        first = AgentToken.objects.get().last_used_at
        agent_token_authenticate(issued.secret)
        assert AgentToken.objects.get().last_used_at == first

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda raw: raw[:-1] + ("A" if raw[-1] != "A" else "B"),  # right prefix, wrong secret
            lambda raw: "sgs_000000000000_" + raw.split("_", 2)[2],  # unknown prefix
            lambda raw: raw.replace("sgs_", "xyz_"),
            lambda raw: "",
            lambda raw: "not-a-token",
        ],
    )
    def test_anything_but_the_exact_token_is_refused(self, mangle):
        issued = agent_token_create(name="a")
        with pytest.raises(InvalidToken):
            agent_token_authenticate(mangle(issued.secret))

    def test_a_revoked_token_is_refused_and_says_so(self):
        issued = agent_token_create(name="a")
        agent_token_revoke(issued.token.prefix, actor="staff:ana")
        with pytest.raises(TokenRevoked, match="was revoked"):
            agent_token_authenticate(issued.secret)

    def test_revoking_twice_records_one_event(self):
        issued = agent_token_create(name="a")
        agent_token_revoke(issued.token.prefix)
        agent_token_revoke(issued.token.prefix)
        assert AuditEvent.objects.filter(action="token_revoke").count() == 1


class TestCommands:
    def test_create_agent_token_prints_the_token_and_its_scopes(self):
        out, err = StringIO(), StringIO()
        call_command("create_agent_token", "nightly", "--scopes", "read", stdout=out, stderr=err)
        token = AgentToken.objects.get(name="nightly")
        assert agent_token_authenticate(out.getvalue().strip()) == token
        assert token.scopes == ["read"]
        assert "cannot be shown again" in err.getvalue()
        assert AuditEvent.objects.get(action="token_create").actor == "command:create_agent_token"

    def test_create_agent_token_refuses_a_bad_name_with_a_command_error(self):
        with pytest.raises(CommandError, match="not a valid agent name"):
            call_command("create_agent_token", "bad name", stdout=StringIO(), stderr=StringIO())

    def test_revoke_agent_token_takes_a_prefix_or_a_whole_token(self):
        first = agent_token_create(name="a")
        second = agent_token_create(name="a")
        call_command("revoke_agent_token", first.token.prefix, stdout=StringIO())
        call_command("revoke_agent_token", second.secret, stdout=StringIO())
        assert AgentToken.objects.filter(revoked_at__isnull=True).count() == 0

    def test_revoke_agent_token_can_revoke_every_token_of_an_agent(self):
        agent_token_create(name="a")
        agent_token_create(name="a")
        kept = agent_token_create(name="b")
        out = StringIO()
        call_command("revoke_agent_token", "--agent", "a", stdout=out)
        assert out.getvalue().count("Revoked a") == 2
        assert list(AgentToken.objects.filter(revoked_at__isnull=True)) == [kept.token]

    def test_revoking_an_unknown_prefix_is_a_command_error(self):
        with pytest.raises(CommandError, match="No agent token has the prefix"):
            call_command("revoke_agent_token", "abcdef123456", stdout=StringIO())

    def test_list_agent_tokens_never_prints_a_secret(self):
        issued = agent_token_create(name="lister")
        out = StringIO()
        call_command("list_agent_tokens", stdout=out)
        assert "lister" in out.getvalue()
        assert issued.token.prefix in out.getvalue()
        assert issued.secret not in out.getvalue()


def test_stored_idempotent_responses_are_pruned_after_their_window():
    token = agent_token_create(name="a").token
    old = IdempotencyRecord.objects.create(token=token, key="old", fingerprint="f")
    IdempotencyRecord.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    IdempotencyRecord.objects.create(token=token, key="new", fingerprint="f")
    assert idempotency_records_prune() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
