"""Configs, one module per paper: its experiments' defaults and its named configs.

Each module holds plain config functions (Sacred config scopes: the body's assignments are the
settings, the docstring cites the paper's section or table) and imports nothing from the
ingredients; the experiments of that paper register them (``ingredients.experiment.genlab_experiment``),
so each experiment offers its own paper's named configs and no other's.
"""
