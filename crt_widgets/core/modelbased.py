"""Former home of :func:`analyze_trial`, kept as a re-export for one release: import it from
:mod:`crt_widgets.core.analysis.trial`.

>>> from crt_widgets.core.modelbased import analyze_trial
>>> analyze_trial.__module__
'crt_widgets.core.analysis.trial'
"""
from crt_widgets.core.analysis.trial import TrialAnalysis, analyze_trial  # noqa: F401
