"""anchorsplat.viewer (see docs/architecture.md)."""
