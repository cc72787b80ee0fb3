"""anchorsplat.viewer (see DESIGN.md)."""
