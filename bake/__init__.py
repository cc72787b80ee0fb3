"""anchorsplat.bake (see docs/architecture.md)."""
