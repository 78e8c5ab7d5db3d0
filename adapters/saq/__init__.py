"""saq backend (see backend.toml)."""
