"""The city registry: the cities the index can cover, their names in each source.

Lowest domain layer after the base modules: it knows nothing about sources,
the store or releases. ``build`` assembles a registry from city lists that the
sources declare; ``synthetic`` makes registries for scale tests.
"""
