"""Model-based analysis: GEE with small-sample corrected sandwiches (:mod:`.gee`), linear mixed models
(:mod:`.mixed`, fast engine :mod:`.mixed_fast`), GLMMs (:mod:`.glmm`), the ICC (:mod:`.icc`), GLM residuals
(:mod:`.residuals`) and bootstrap intervals (:mod:`.bootstrap`)."""
