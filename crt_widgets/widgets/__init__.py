"""ipywidgets panels: thin views over one state object; charts are functions from results to Altair specs."""
