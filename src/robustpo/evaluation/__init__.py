"""The evaluation protocol: deterministic episodes under an attack, and return statistics."""
