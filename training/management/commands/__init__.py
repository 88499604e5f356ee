"""`manage.py` commands of the training app."""
