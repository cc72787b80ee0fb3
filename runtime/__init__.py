"""anchorsplat.runtime (see DESIGN.md)."""
