"""The reward server's routes, one module per wire protocol: ``native`` (``/v1/reward/score``),
``openrlhf`` (``/get_reward``), ``vllm`` (``/classify``, ``/pooling``) and ``ops`` (health, models, reload,
metrics). Each scoring route reads: authenticate -> parse (the wire format into prompts and responses) ->
charge -> score -> envelope (the wire format of the answer)."""
