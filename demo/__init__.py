"""The end-to-end demo (``manage.py demo``): orchestrates annotation, training and the reward server, so it
sits above all three apps (it may import each of them; none imports it)."""
