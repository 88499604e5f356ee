"""Training: dataset snapshots, RM/SFT/PPO jobs, evaluation and the model registry."""
