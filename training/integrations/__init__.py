"""Integrations for users' own training scripts (plain Python: no Django)."""
