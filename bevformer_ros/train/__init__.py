"""Training of the project's BEVFormer (official recipe: Hungarian matching, focal + L1 losses, AdamW)."""
