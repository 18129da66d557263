"""What compares runs: run a study (run.py), report its tables and plots (report.py,
plots.py), and the pruning studies (prune.py)."""
