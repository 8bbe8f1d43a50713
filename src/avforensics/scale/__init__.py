"""Data work (prepare, batch detect) on a Ray cluster: the local engine's jobs, run by Ray actors."""
