"""fc.optim (issue 6)."""
