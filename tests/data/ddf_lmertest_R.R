# Reference values for tests/test_ddf.py: denominator degrees of freedom of linear mixed models.
# Run from the repository root: Rscript tests/data/ddf_lmertest_R.R
# (R 4.2, lme4, lmerTest 3.1-3, pbkrtest 0.5.2, jsonlite). Writes tests/data/crt_small.csv (the simulated
# trial, made here from a seed) and tests/data/ddf_lmertest.json (the reference numbers).
#
# Satterthwaite: lmerTest's summary() (contest1D: 2 var^2 / (grad' vcov_varpar grad)).
# Kenward-Roger: pbkrtest's vcovAdj() (the adjusted covariance) and get_Lb_ddf() per coefficient, which
# is what lmerTest's summary(ddf = "Kenward-Roger") reports. The fits are converged tightly (bobyqa with
# rhoend = 1e-12) so that both programs evaluate the formulas at the same optimum.
suppressPackageStartupMessages({library(lmerTest); library(pbkrtest); library(jsonlite)})

set.seed(20240515)
k <- 14
sizes <- c(3, 5, 8, 12, 20, 35, 40, 4, 6, 9, 15, 22, 30, 38)        # unbalanced clusters
arm <- rep(c(0, 1), each = 7)[sample(k)]
baseline <- round(rnorm(k), 3)                                      # a cluster-level covariate
cluster <- rep(seq_len(k), sizes)
x <- round(rnorm(sum(sizes)), 3)                                    # an individual-level covariate
u <- rnorm(k, 0, 0.6)
y <- round(1 + 0.5 * arm[cluster] + 0.3 * baseline[cluster] + 0.4 * x + u[cluster] + rnorm(sum(sizes)), 4)
trial <- data.frame(cluster = cluster, arm = arm[cluster], baseline = baseline[cluster], x = x, y = y)
write.csv(trial, "tests/data/crt_small.csv", row.names = FALSE, quote = FALSE)
trial <- read.csv("tests/data/crt_small.csv")
calls <- read.csv("tests/data/callcenter_small.csv")
calls$reason <- factor(calls$reason)
calls$group <- factor(calls$group)

tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
cases <- list(
  "intercept REML" = list(formula = y ~ arm + x + (1 | cluster), data = trial, reml = TRUE),
  "cluster covariate REML" = list(formula = y ~ arm + baseline + x + (1 | cluster), data = trial, reml = TRUE),
  "intercept ML" = list(formula = y ~ arm + x + (1 | cluster), data = trial, reml = FALSE),
  "nested REML" = list(formula = call_CSAT ~ reason + age + group + (1 | center_ID/rep_ID), data = calls, reml = TRUE),
  "nested ML" = list(formula = call_CSAT ~ reason + age + group + (1 | center_ID/rep_ID), data = calls, reml = FALSE)
)
out <- list()
for (name in names(cases)) {
  case <- cases[[name]]
  fit <- lmer(case$formula, data = case$data, REML = case$reml, control = tight)
  satt <- coef(summary(fit, ddf = "Satterthwaite"))
  vc <- as.data.frame(VarCorr(fit))
  res <- list(beta = unname(fixef(fit)), terms = names(fixef(fit)), theta = unname(getME(fit, "theta")),
              sigma = sigma(fit), variances = setNames(as.list(vc$vcov), vc$grp),
              deviance = unname(deviance(fit, REML = case$reml)),
              se = unname(satt[, "Std. Error"]), satterthwaite_df = unname(satt[, "df"]),
              satterthwaite_p = unname(satt[, "Pr(>|t|)"]))
  if (case$reml) {
    adj <- as.matrix(vcovAdj(fit))
    p <- length(fixef(fit))
    kr_df <- sapply(seq_len(p), function(j) { L <- rep(0, p); L[j] <- 1; get_Lb_ddf(fit, L) })
    kr <- coef(summary(fit, ddf = "Kenward-Roger"))
    res$kr_se <- sqrt(diag(adj))
    res$kr_df <- kr_df
    res$kr_p <- unname(kr[, "Pr(>|t|)"])
    res$kr_vcov <- unname(adj)
    stopifnot(max(abs(kr[, "df"] - kr_df)) < 1e-10, max(abs(kr[, "Std. Error"] - sqrt(diag(adj)))) < 1e-12)
  }
  out[[name]] <- res
}
writeLines(toJSON(out, digits = NA, pretty = TRUE, auto_unbox = TRUE), "tests/data/ddf_lmertest.json")
