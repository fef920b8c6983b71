"""Reviewers of a change: a deterministic built-in check and HTTP model-API reviewers.
All of them produce a Verdict (verdict.py); aggregate() folds several into one outcome."""
