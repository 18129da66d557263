"""Configs that reproduce runs of published papers (GenRep, ICLR 2022)."""
