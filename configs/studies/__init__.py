"""Study configs: each lists runs that study.py trains, evaluates and compares."""
