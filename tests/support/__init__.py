"""Test support shared across test folders (speech rendering, ...)."""
