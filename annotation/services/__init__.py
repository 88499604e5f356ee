"""Annotation write services (one module per subject; import from the submodule)."""
