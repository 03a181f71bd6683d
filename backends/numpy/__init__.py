"""The NumPy backend: graph -> generated Python source (issue 4)."""
