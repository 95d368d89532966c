"""Where archives of months past retention are kept (docs/audit.md, "Retention and
archives").

Maintenance writes and verifies an archive in ``AUDIT_ARCHIVE_DIR`` first: a local file
it can fsync, rename atomically and read back. With ``STORAGES["audit_archive"]`` set
(any Django storage: another filesystem, django-storages' S3, ...), the verified file
and its digest file are then copied there and the copy's sha256 checked, before the
month is dropped; the ``AuditArchive`` row says where it lives. Without it, the archive
directory is where they live.
"""

import hashlib
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages

from audit.exceptions import ArchiveMismatch
from audit.integrity.archive import digest_path

ARCHIVE_STORAGE = "audit_archive"


def archive_storage() -> Storage | None:
    """The configured archive storage; None when archives stay in AUDIT_ARCHIVE_DIR."""
    if ARCHIVE_STORAGE not in settings.STORAGES:
        return None
    return storages[ARCHIVE_STORAGE]


def archive_keep(local: Path, sha256: str, *, partition: str) -> str:
    """Copy the verified archive ``local`` (and its digest file) into the archive
    storage unless an identical copy is there, check the copy, and return where the
    archive lives. A different file under the same name is evidence: ``ArchiveMismatch``,
    and nothing is overwritten."""
    storage = archive_storage()
    if storage is None:
        return str(local)
    where = location(storage, local.name)
    for path, expected in ((local, sha256), (digest_path(local), None)):
        if not storage.exists(path.name):
            with path.open("rb") as stream:
                saved = storage.save(path.name, File(stream, name=path.name))
            if saved != path.name:  # a storage that renamed it: never the archive's name
                raise ArchiveMismatch(partition, where, f"the storage saved it as {saved}")
        if expected is not None and stored_sha256(storage, path.name) != expected:
            raise ArchiveMismatch(
                partition,
                where,
                "a different file is stored under that name, or the copy"
                " differs from the verified archive",
            )
    return where


def stored_sha256(storage: Storage, name: str) -> str:
    digest = hashlib.sha256()
    with storage.open(name, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def location(storage: Storage, name: str) -> str:
    """A filesystem path where the storage has one, else ``audit_archive:<name>``."""
    try:
        return storage.path(name)
    except NotImplementedError:
        return f"{ARCHIVE_STORAGE}:{name}"
