"""Predicted rates and constants, slope fitting, and the checks (see theory/README.md)."""
