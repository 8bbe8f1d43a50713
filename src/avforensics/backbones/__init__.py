"""backbones room (see DESIGN.md)."""
