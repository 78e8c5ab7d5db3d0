"""The stdlib-only core: imported by harness, adapters, scenarios and reports, and
importing none of them. Every module here must stay importable inside each
backend's own environment (drivers and workers run there)."""
