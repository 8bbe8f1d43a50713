"""eval room (see DESIGN.md)."""
