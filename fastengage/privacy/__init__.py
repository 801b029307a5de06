"""Privacy built in: keyed pseudonymisation of ids, consent filtering, differentially private
segment reports, and the protocol every stateful object follows to forget a customer.

See the README section "Privacy" for what each function guarantees and what it does not.
"""
from .pseudonyms import METADATA_KEY, key_id, pseudonymize, siphash_key

__all__ = ["pseudonymize", "key_id", "siphash_key", "METADATA_KEY"]
from .consent import ConsentFilter, ConsentResult, consented  # noqa: E402

__all__ += ["consented", "ConsentResult", "ConsentFilter"]
from .dp import Budget, DPReport, dp_report  # noqa: E402

__all__ += ["dp_report", "DPReport", "Budget"]
from . import forget  # noqa: E402  (the protocol module: forget.AuditRecord, forget.drop_ids, ...)
from .forget import AuditRecord, find_traces, forget_everywhere, forget_rows, read_log  # noqa: E402

__all__ += ["forget", "AuditRecord", "forget_everywhere", "forget_rows", "read_log",
            "find_traces"]
