"""Witness backends and the archive storage are checked when the project starts."""

import pytest
from django.core.checks import run_checks

FILE_WITNESS = "audit.integrity.witnesses.FileWitness"
HTTP_WITNESS = "audit.integrity.witnesses.HttpWitness"


def _ids() -> list[str]:
    return sorted(
        message.id
        for message in run_checks()
        if message.id.startswith(("sergas.E007", "sergas.E008", "sergas.E009", "sergas.E01"))
    )


def test_the_configured_witnesses_and_no_archive_storage_pass():
    assert _ids() == []


def test_witnesses_from_the_environments_lists_pass(app_settings, tmp_path):
    app_settings("AUDIT", WITNESSES=None, WITNESS_FILES=[str(tmp_path / "heads.jsonl")])
    app_settings("AUDIT", WITNESS_URLS=["https://notary.example/heads"], WITNESS_TOKEN="t")
    from audit import conf

    assert [(w["BACKEND"], w["OPTIONS"]) for w in conf.witnesses()] == [
        (FILE_WITNESS, {"path": str(tmp_path / "heads.jsonl")}),
        (HTTP_WITNESS, {"url": "https://notary.example/heads", "token": "t"}),
    ]
    assert _ids() == []


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"NAME": "a", "BACKEND": "notary.witnesses.Missing"}, "sergas.E007"),
        ({"NAME": "a", "BACKEND": "audit.integrity.heads.SealHead"}, "sergas.E008"),
        ({"NAME": "a", "BACKEND": FILE_WITNESS, "OPTIONS": {}}, "sergas.E009"),
        ({"NAME": "a", "BACKEND": HTTP_WITNESS, "OPTIONS": {"token": "t"}}, "sergas.E009"),
        ({"NAME": "a", "OPTIONS": {"path": "/tmp/x"}}, "sergas.E009"),
    ],
)
def test_a_witness_that_cannot_be_built_is_an_error(app_settings, entry, expected):
    app_settings("AUDIT", WITNESSES=[entry])
    assert _ids() == [expected]


def test_a_missing_option_is_named(app_settings):
    app_settings("AUDIT", WITNESSES=[{"NAME": "notary", "BACKEND": HTTP_WITNESS}])
    [error] = [m for m in run_checks() if m.id == "sergas.E009"]
    assert "lacks the option(s) url" in error.msg


def test_an_archive_storage_must_be_a_django_storage(settings):
    storage = "django.core.files.storage.FileSystemStorage"
    settings.STORAGES = {**settings.STORAGES, "audit_archive": {"BACKEND": storage}}
    assert _ids() == []
    settings.STORAGES = {**settings.STORAGES, "audit_archive": {"BACKEND": "s3.Missing"}}
    assert _ids() == ["sergas.E010"]
    settings.STORAGES = {
        **settings.STORAGES,
        "audit_archive": {"BACKEND": "audit.integrity.witnesses.FileWitness"},
    }
    assert _ids() == ["sergas.E011"]
