"""streaq backend (see backend.toml)."""
