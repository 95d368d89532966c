"""Every write of the traces app: storing reported spans, and their partitions."""

from traces.services.ingest import IngestResult, spans_ingest
from traces.services.partitions import PartitionReport, trace_partitions_maintain

__all__ = ["IngestResult", "PartitionReport", "spans_ingest", "trace_partitions_maintain"]
