"""Evaluators of learned representations and generated views."""
