# Reference fits for tests/test_stepped_wedge_analysis.py (run from the repository root:
#   Rscript tests/data/stepped_wedge_small_lme4.R > tests/data/stepped_wedge_small_lme4.txt).
# R 4.2, lme4 (default optimizer settings). The data: a simulated cross-sectional stepped wedge, 12 clusters
# on 4 sequences, 5 periods, 635 individuals (crt_widgets.datasets.simulate_stepped_wedge_outcomes, seeds 16/17,
# about 10% of rows dropped at random).
# Hussey and Hughes (2007): period fixed effects and a cluster random intercept; Hooper et al. (2016): a
# cluster-period random intercept nested in the cluster (block-exchangeable correlation).
suppressPackageStartupMessages(library(lme4))
d <- read.csv("tests/data/stepped_wedge_small.csv")
d$period <- factor(d$period)
show <- function(label, fit) {
  vc <- as.data.frame(VarCorr(fit))
  cat(sprintf("== %s\n", label))
  cat(sprintf("fixef %s %.12g\n", names(fixef(fit)), fixef(fit)), sep = "")
  cat(sprintf("se %s %.12g\n", names(fixef(fit)), sqrt(diag(as.matrix(vcov(fit))))), sep = "")
  cat(sprintf("vc %s %.12g\n", vc$grp, vc$vcov), sep = "")
  cat(sprintf("logLik %.12g\n", as.numeric(logLik(fit))))
}
show("nested REML", lmer(y ~ treatment + period + (1 | cluster/period), data = d))
show("hussey-hughes REML", lmer(y ~ treatment + period + (1 | cluster), data = d))
show("nested ML", lmer(y ~ treatment + period + (1 | cluster/period), data = d, REML = FALSE))
