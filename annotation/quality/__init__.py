"""Annotation quality maths: agreement, per-annotator statistics, Dawid-Skene reliability, Bradley-Terry
leaderboards and charts. Pure functions over numpy arrays; the Django side lives in
``annotation.selectors.quality`` and ``annotation.services.quality``."""
