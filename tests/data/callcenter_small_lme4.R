# Reference fits for tests/test_mixed.py (run: Rscript tests/data/callcenter_small_lme4.R [csv]).
# R 4.x, lme4; default optimizer settings, REML unless stated.
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
path <- if (length(args)) args[1] else "tests/data/callcenter_small.csv"
d <- read.csv(path)
d$reason <- factor(d$reason)
show <- function(label, fit) {
  vc <- as.data.frame(VarCorr(fit))
  cat(sprintf("== %s\n", label))
  cat(sprintf("fixef %s %.12g\n", names(fixef(fit)), fixef(fit)), sep = "")
  cat(sprintf("vc %s %.12g\n", vc$grp, vc$vcov), sep = "")
  cat(sprintf("logLik %.12g\n", as.numeric(logLik(fit))))
  cat(sprintf("se %s %.12g\n", names(fixef(fit)), sqrt(diag(as.matrix(vcov(fit))))), sep = "")
}
t0 <- proc.time()
show("nested REML", lmer(call_CSAT ~ reason + age + (1 | center_ID/rep_ID), data = d))
cat(sprintf("seconds %.2f\n", (proc.time() - t0)[["elapsed"]]))
if (!length(args)) {
  show("nested ML", lmer(call_CSAT ~ reason + age + (1 | center_ID/rep_ID), data = d, REML = FALSE))
  show("centre REML", lmer(call_CSAT ~ reason + age + (1 | center_ID), data = d))
  show("group REML", lmer(call_CSAT ~ reason + age + group + (1 | center_ID/rep_ID), data = d))
}
