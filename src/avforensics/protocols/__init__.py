"""protocols room: runners that train and evaluate (evaluate, paper tables, the demo)."""
