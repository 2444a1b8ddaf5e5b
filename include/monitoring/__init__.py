"""Nightly monitoring: statistics and policy (pure), the tables and steps (I/O), the HTML report."""
