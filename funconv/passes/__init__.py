"""Graph -> graph rewrites (issue 4, and the conv rewrites later)."""
