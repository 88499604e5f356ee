"""Annotation read selectors (one module per subject; import from the submodule)."""
