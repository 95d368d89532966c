"""Errors of the audit domain. Messages are constants so tests and clients can match them."""

from kernel.errors import Conflict, NotFound, ValidationFailed

INVALID_TIME_RANGE = "The time range is empty: 'start' ({start}) must be before 'end' ({end})."
INVALID_METADATA_FILTER = "'metadata_contains' must be a JSON object, not {kind}."
INVALID_CURSOR = "'after' must be a (timestamp, event id) pair from the previous page."
ARCHIVE_MISMATCH = (
    "An archive of {partition} already exists at {path} but does not match the partition: "
    "{reason}. Nothing was dropped. Move the file away after checking it, then run again."
)
PARTITION_UNVERIFIED = (
    "{partition} failed verification ({count} problem(s), first: {first}); it was neither "
    "archived nor dropped. Run `manage.py verify_audit --from {start} --to {end}`."
)


class InvalidAuditSearch(ValidationFailed):
    code = "invalid_audit_search"


class ArchiveMismatch(Conflict):
    """An archive file is in the way and does not match the partition it is named after."""

    code = "audit_archive_mismatch"

    def __init__(self, partition: str, path: str, reason: str) -> None:
        super().__init__(
            ARCHIVE_MISMATCH.format(partition=partition, path=path, reason=reason),
            partition=partition,
            path=path,
        )


class PartitionUnverified(Conflict):
    """A partition past retention did not verify; retention leaves it in place."""

    code = "audit_partition_unverified"

    def __init__(self, partition: str, *, start: str, end: str, problems: list[str]) -> None:
        super().__init__(
            PARTITION_UNVERIFIED.format(
                partition=partition,
                count=len(problems),
                first=problems[0] if problems else "-",
                start=start,
                end=end,
            ),
            partition=partition,
            problems=problems,
        )


AUDIT_EVENT_NOT_FOUND = "Audit event {event_id} does not exist."
PROOF_UNAVAILABLE = "No inclusion proof for event {event_id}: {reason}."
PROOF_NOT_SEALED = "it is not sealed yet; a seal is made every AUDIT_SEAL_INTERVAL_SECONDS"
PROOF_OLD_SEAL = "seal #{seal} was made before seals had Merkle roots and signed heads"
PROOF_UNSIGNED = "seal #{seal} is not signed (no signing key was configured)"


class AuditEventNotFound(NotFound):
    code = "audit_event_not_found"

    def __init__(self, event_id: object) -> None:
        super().__init__(AUDIT_EVENT_NOT_FOUND.format(event_id=event_id), event_id=str(event_id))


class ProofUnavailable(Conflict):
    code = "proof_unavailable"

    def __init__(self, event_id: object, reason: str) -> None:
        super().__init__(
            PROOF_UNAVAILABLE.format(event_id=event_id, reason=reason), event_id=str(event_id)
        )
