"""Reward models: Bradley-Terry reward runs (TRL RewardTrainer), their evaluation and model card, and
the registry (register, evaluate, promote through the gate)."""
