"""The pure logic of `pivot watch`: ignore rules, what to watch, debouncing,
classification, affected stages, supervision budgets, display state.

Actors in :mod:`pivot.actors` are thin shells around these functions.
"""
