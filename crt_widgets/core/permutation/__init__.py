"""The clustered permutation test over a randomization space (Gail et al. 1996; Li et al. 2016):
the test (:mod:`.test`), the space it permutes over (:mod:`.space`), the outcome data reduced to
clusters (:mod:`.data`) and the confidence interval by test inversion (:mod:`.interval`)."""
