"""media room (see DESIGN.md)."""
