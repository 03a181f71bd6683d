"""fc.random (issue 6)."""
