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
# Small-sample inference for the treatment effect (nested REML model, converged tightly): lmerTest's
# Satterthwaite df and pbkrtest's Kenward-Roger adjusted SE and df (what summary(ddf = "Kenward-Roger") reports).
suppressPackageStartupMessages({library(lmerTest); library(pbkrtest)})
tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
fit <- lmerTest::lmer(y ~ treatment + period + (1 | cluster/period), data = d, control = tight)
satt <- coef(summary(fit, ddf = "Satterthwaite"))
kr <- coef(summary(fit, ddf = "Kenward-Roger"))
cat("== nested REML small-sample\n")
cat(sprintf("satterthwaite_df %.12g\n", satt["treatment", "df"]))
cat(sprintf("satterthwaite_p %.12g\n", satt["treatment", "Pr(>|t|)"]))
cat(sprintf("kr_se %.12g\n", kr["treatment", "Std. Error"]))
cat(sprintf("kr_df %.12g\n", kr["treatment", "df"]))
cat(sprintf("kr_p %.12g\n", kr["treatment", "Pr(>|t|)"]))
