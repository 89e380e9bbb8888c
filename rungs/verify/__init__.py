"""Verification: safe parsing of model text, answer extraction, and the sandboxed worker pool."""
