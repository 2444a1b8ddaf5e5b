"""Data quality of each raw partition: suites declared as data, the Great Expectations session,
validation, and release (publish, split or quarantine) with results read back for on-call."""
