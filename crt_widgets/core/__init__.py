"""Pure computation: designs, spaces, scores, validity, tests, models, power.

Nothing in this package imports ipywidgets; the dashboards are thin views over it.
"""
