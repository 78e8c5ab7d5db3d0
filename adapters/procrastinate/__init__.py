"""procrastinate backend (see backend.toml)."""
