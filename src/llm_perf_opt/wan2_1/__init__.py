"""Wan2.1 declared as data: variant configs, token geometry and one module per real component."""
