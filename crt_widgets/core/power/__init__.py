"""Power: analytic (:mod:`.analytic`), by simulation of the design stage (:mod:`.design_simulation`) and
of calls nested in representatives and centres as in Buisson (2021, ch. 10) (:mod:`.chapter`)."""
