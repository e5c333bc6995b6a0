"""A trial's analysis as a statistician reports it: the permutation test beside GEE and mixed models
(:mod:`.trial`), and the cluster-average and individual-average estimands (:mod:`.estimands`)."""
