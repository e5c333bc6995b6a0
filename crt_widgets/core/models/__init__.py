"""Model-based analysis: linear mixed models (:mod:`.mixed`, fast engine :mod:`.mixed_fast`), GLMMs
(:mod:`.glmm`), GLM residuals (:mod:`.residuals`) and bootstrap intervals (:mod:`.bootstrap`)."""
