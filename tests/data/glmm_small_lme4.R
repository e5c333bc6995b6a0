# Reference numbers for tests/test_glmm.py: lme4 1.1-31 (Debian r-cran-lme4), run locally, never in CI.
suppressMessages(library(lme4))
d <- read.csv("tests/data/glmm_small.csv")
for (q in c(1, 10)) {
  b <- glmer(y ~ treat + x + (1 | cluster), data = d, family = binomial, nAGQ = q)
  p <- glmer(count ~ treat + x + (1 | cluster), data = d, family = poisson, nAGQ = q)
  for (f in list(b, p)) {
    cat(sprintf("nAGQ=%d family=%s\n", q, family(f)$family))
    cat("fixef", sprintf("%.8f", fixef(f)), "\n")
    cat("se", sprintf("%.8f", sqrt(diag(as.matrix(vcov(f))))), "\n")
    cat("sd", sprintf("%.8f", as.data.frame(VarCorr(f))$sdcor), "\n")
    cat("loglik", sprintf("%.6f", as.numeric(logLik(f))), "\n")
  }
}
