"""Reward serving: batched scoring, peer-compatible routes, clients and spot checks."""
