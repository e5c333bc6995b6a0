"""Power: analytic (:mod:`.analytic`), by simulation of the design stage (:mod:`.design_simulation`) and
of a hierarchical model (:mod:`.chapter`)."""
