"""Flax modules: encoders, projection heads and generators."""
