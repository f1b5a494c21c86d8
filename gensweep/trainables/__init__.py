"""gensweep."""
