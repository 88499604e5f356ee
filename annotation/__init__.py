"""Annotation: projects, prompts, candidates, comparison tasks, judgments, the annotator UI and quality."""
