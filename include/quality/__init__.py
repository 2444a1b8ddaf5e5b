"""Data quality: Great Expectations suites, validation, publish / split / quarantine."""
