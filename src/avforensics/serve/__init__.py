"""serve room (see DESIGN.md)."""
