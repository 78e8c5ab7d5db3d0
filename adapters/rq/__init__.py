"""rq backend (see backend.toml)."""
