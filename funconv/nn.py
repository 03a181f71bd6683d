"""fc.nn (issue 6)."""
