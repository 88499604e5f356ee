"""Lineage of the training artefacts: for a dataset snapshot, a reward model version or a policy run, the
whole chain it came from (judgments and pseudonymous annotators -> snapshot -> reward model and its
evaluations and promotions -> policy run -> gate record) with hashes and configs, what was built from it,
and the JSON card (``preflab_lineage.json``) that travels with the artefact directory.

``nodes`` is the framework and the registry of node builders (one function per kind: ``data_nodes``,
``model_nodes``; ``generic`` for optional models), ``selectors`` walks the chain, ``card`` is the card's
schema and content hash, ``services`` writes the card file, ``receivers`` keep it current.
"""
