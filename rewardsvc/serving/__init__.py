"""The reward server, by subject: ``config`` (the ``PREFLAB_RM_*`` environment), ``errors`` (the API error
envelope), ``metrics`` (Prometheus), ``models`` (the served model and its hot swap), ``auth`` (tokens, their
cache, trusted networks), ``ratelimit``, ``samples`` (scored-sample logging), ``service`` (one process's
state), ``routes`` (one module per wire protocol, each parse -> score -> envelope) and ``app`` (the ASGI app
factory). ``rewardsvc.server`` re-exports what callers use (``app``, ``create_app``, ``ServerConfig``)."""
