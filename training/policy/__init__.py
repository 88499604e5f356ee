"""Policy optimisation: SFT, a compact PPO, GRPO/RLOO adapters, rewards, failure detectors, the battle gate."""
