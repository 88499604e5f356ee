"""Management commands of the training app."""
