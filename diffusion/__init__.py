"""anchorsplat.diffusion (see docs/architecture.md)."""
