"""Hyper-parameter sweeps of reward models: an Optuna study in the project's database, trials as ordinary
reward runs scored on the validation split, the chosen config evaluated once on the test split."""
