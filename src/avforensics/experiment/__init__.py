"""experiment room: what training, evaluation and inference share (config schema, checkpoints, datasets,
prediction rows). No Lightning here: inference imports this room (see docs/architecture.md)."""
