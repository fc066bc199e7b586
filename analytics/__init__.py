"""Learning from case history: completion-time estimates (``analytics.eta``) and breach
prediction for open stages (``analytics.risk``).

Heavy (numpy, LightGBM) and never imported by workflow code: the worker calls it through
``activities.eta``, the CLI through ``cli.eta`` and ``cli.risk``. Fitted models are stored in
``learned_models`` (``store.learned_models``) as JSON with LightGBM's text format inside, never
pickles.
"""
