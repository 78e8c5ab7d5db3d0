"""huey backend (see backend.toml)."""
