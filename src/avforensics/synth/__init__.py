"""synth room (see DESIGN.md)."""
