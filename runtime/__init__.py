"""anchorsplat.runtime (see docs/architecture.md)."""
