"""pg-raw backend: the PostgreSQL ceiling (see backend.toml)."""
