"""anchorsplat.diffusion (see DESIGN.md)."""
