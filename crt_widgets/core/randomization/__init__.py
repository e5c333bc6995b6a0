"""Designs: covariate-constrained two-arm (:mod:`.constrained`), multi-arm and factorial (:mod:`.multiarm`),
balanced stratified (:mod:`.stratified`) and pair-matched (:mod:`.matching`) randomization, all with one
protocol (:mod:`.protocol`) and one allocation record (:mod:`.allocation`)."""
