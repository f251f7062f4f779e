"""Results: attack suites, robustness curves, tables and many-agent comparisons."""
