"""inference room (see DESIGN.md)."""
