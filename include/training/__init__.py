"""Training: candidates and metrics (pure), the gate (a pure predicate), the training data and the
monitoring reference (I/O), the train_model steps."""
