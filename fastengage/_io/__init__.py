"""Shared input/output plumbing of the API layer: input sources (``sources``), id encoding
(``ids``), safe persistence (``persist``), the one time parser (``times``) and progress output
(``progress``). Capability packages import from here; nothing here imports a capability."""
