"""Persistence: checkpoint files and run directories."""
