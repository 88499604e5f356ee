"""Server-rendered annotator, reviewer and dashboard pages (Django templates + a little plain JS)."""
