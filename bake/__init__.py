"""anchorsplat.bake (see DESIGN.md)."""
