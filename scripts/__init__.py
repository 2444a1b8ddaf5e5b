"""Operator scripts of `make run` and the demos (run with the project root on PYTHONPATH)."""
