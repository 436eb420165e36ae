"""REST benchmark: MadBase `/rest/v1` vs pgbench (same SQL transaction) vs the bare reference app."""
