"""emollama."""
