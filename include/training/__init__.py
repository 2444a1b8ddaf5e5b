"""Training: candidates and metrics (pure), the gate (a pure predicate), the train_model steps."""
