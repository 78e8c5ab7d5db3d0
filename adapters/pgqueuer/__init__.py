"""pgqueuer backend (see backend.toml)."""
