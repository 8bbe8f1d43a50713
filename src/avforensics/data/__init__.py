"""data room (see DESIGN.md)."""
