"""arq backend (see backend.toml)."""
