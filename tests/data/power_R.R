# Reference values for tests/test_power_outcomes.py: analytic power of cluster randomized trials.
# Run from the repository root:  Rscript tests/data/power_R.R /path/to/clusterPower/R
# (R 4.2, mvtnorm 1.1-3). The argument is the R/ folder of clusterPower 0.7.0's source (CRAN, GPL >= 2);
# only its closed-form functions cpa.normal, cpa.binary and cpa.count are sourced from there (they use
# base R only), so the package and its many imports need not be installed. Writes tests/data/power_R.json.
suppressPackageStartupMessages({library(jsonlite); library(mvtnorm)})
src <- commandArgs(trailingOnly = TRUE)[1]
for (f in c("cpa.normal.R", "cpa.binary.R", "cpa.count.R")) source(file.path(src, f))
out <- list()

# 1. base R power.t.test on cluster means (continuous, equal sizes): sd of a cluster mean sqrt(sd^2 DE / m)
grid <- expand.grid(d = c(0.2, 0.5), icc = c(0.01, 0.1), m = c(10, 40), k = c(6, 15))
grid$power <- mapply(function(d, icc, m, k) power.t.test(n = k, delta = d, sd = sqrt((1 + (m - 1) * icc) / m),
                                                         strict = TRUE)$power, grid$d, grid$icc, grid$m, grid$k)
out$power_t_test <- grid

# 2. clusterPower's closed forms. cpa.normal(method = "weighted"): noncentral t on 2(k - 1) df, upper tail
#    only, design effect 1 + ((CV^2 + 1) m - 1) ICC.
normal <- expand.grid(d = c(0.3, 0.6), icc = c(0.02, 0.1), m = c(15, 50), k = c(5, 12), cv = c(0, 0.6))
normal$power <- mapply(function(d, icc, m, k, cv) cpa.normal(nclusters = k, nsubjects = m, CV = cv, d = d, ICC = icc,
                                                               vart = 1, method = "weighted"),
                       normal$d, normal$icc, normal$m, normal$k, normal$cv)
out$cpa_normal <- normal
#    cpa.binary: per-arm variances p(1 - p); tdist = FALSE is the normal approximation pnorm(|d| / sd - z)
binary <- expand.grid(p1 = c(0.25, 0.4), p2 = 0.15, icc = c(0.01, 0.05), m = c(30, 100), k = c(6, 14),
                      cv = c(0, 0.5), tdist = c(TRUE, FALSE))
binary$power <- mapply(function(p1, p2, icc, m, k, cv, tdist) cpa.binary(nclusters = k, nsubjects = m, CV = cv,
                                                                          p1 = p1, p2 = p2, ICC = icc, tdist = tdist),
                       binary$p1, binary$p2, binary$icc, binary$m, binary$k, binary$cv, binary$tdist)
out$cpa_binary <- binary
#    cpa.count: Hayes and Bennett (1999), normal approximation with (nclusters - 1); nsubjects = person-time
#    per cluster, CVB = k of the true cluster rates
count <- expand.grid(r1 = c(0.01, 0.014), r2 = 0.02, py = c(500, 2000), k = c(8, 20), cvb = c(0.1, 0.3))
count$power <- mapply(function(r1, r2, py, k, cvb) cpa.count(power = NA, nclusters = k, nsubjects = py, r1 = r1,
                                                              r2 = r2, CVB = cvb),
                      count$r1, count$r2, count$py, count$k, count$cvb)
count$nclusters <- mapply(function(r1, r2, py, cvb) cpa.count(power = 0.8, nclusters = NA, nsubjects = py, r1 = r1,
                                                               r2 = r2, CVB = cvb, tol = 1e-12),
                          count$r1, count$r2, count$py, count$cvb)
out$cpa_count <- count

# 3. Dunnett's critical values: mvtnorm's multivariate t and normal probabilities (one-sided: the exact TVPACK
#    algorithm, abseps 1e-12; two-sided: Genz-Bretz quasi-Monte Carlo with 5e6 points, abseps 1e-9, a fixed seed),
#    correlation 0.5 (equal arms) and 0.4, by uniroot on the coverage
coverage <- function(c, q, r, df, sides) {
  corr <- matrix(r, q, q); diag(corr) <- 1
  lower <- if (sides == 2) rep(-c, q) else rep(-Inf, q)
  algorithm <- if (sides == 1) TVPACK(abseps = 1e-12) else GenzBretz(maxpts = 5e6, abseps = 1e-9, releps = 0)
  set.seed(1)
  p <- if (is.infinite(df)) pmvnorm(lower = lower, upper = rep(c, q), corr = corr, algorithm = algorithm)
       else pmvt(lower = lower, upper = rep(c, q), corr = corr, df = df, algorithm = algorithm)
  as.numeric(p)
}
dunnett <- expand.grid(q = c(2, 3), r = c(0.5, 0.4), df = c(8, 30, Inf), sides = c(2, 1), alpha = 0.05)
dunnett$critical <- mapply(function(q, r, df, sides, alpha)
  uniroot(function(c) coverage(c, q, r, df, sides) - (1 - alpha), c(1, 6), tol = 1e-12)$root,
  dunnett$q, dunnett$r, dunnett$df, dunnett$sides, dunnett$alpha)
out$dunnett <- dunnett

# 4. textbook formulas, written out here independently of the Python code
#    (a) risk ratio and odds ratio on the log scale by the delta method (Hayes and Moulton 2017, ch. 7):
#        Var(log p_hat) = DE (1 - p) / (p m k), Var(logit p_hat) = DE / (p (1 - p) m k), normal and t tests
ratio <- expand.grid(p0 = c(0.1, 0.3), effect = c(0.6, 1.5), scale = c("ratio", "odds_ratio"), icc = c(0.02, 0.08),
                     m = 40, k = 10, stringsAsFactors = FALSE)
ratio_power <- function(p0, effect, scale, icc, m, k, test) {
  p1 <- if (scale == "ratio") p0 * effect else { o <- effect * p0 / (1 - p0); o / (1 + o) }
  de <- 1 + (m - 1) * icc
  v <- if (scale == "ratio") de * ((1 - p0) / p0 + (1 - p1) / p1) / (m * k)
       else de * (1 / (p0 * (1 - p0)) + 1 / (p1 * (1 - p1))) / (m * k)
  ncp <- abs(log(effect)) / sqrt(v)
  if (test == "z") return(pnorm(ncp - qnorm(0.975)))
  df <- 2 * k - 2; crit <- qt(0.975, df)
  pt(crit, df, ncp, lower.tail = FALSE) + pt(-crit, df, ncp)
}
ratio$power_z <- mapply(ratio_power, ratio$p0, ratio$effect, ratio$scale, ratio$icc, ratio$m, ratio$k, "z")
ratio$power_t <- mapply(ratio_power, ratio$p0, ratio$effect, ratio$scale, ratio$icc, ratio$m, ratio$k, "t")
out$ratio <- ratio
#    (b) covariate adjustment (Teerenstra et al. 2012): cluster-mean variance sd^2 (ICC (1 - R2c) + (1 - ICC) (1 - R2i) / m)
cov <- expand.grid(d = 0.3, icc = c(0.05, 0.15), m = 25, k = 10, r2c = c(0, 0.5), r2i = c(0, 0.3))
cov$power <- with(cov, {
  v <- 2 * (icc * (1 - r2c) + (1 - icc) * (1 - r2i) / m) / k
  df <- 2 * k - 2; crit <- qt(0.975, df); ncp <- d / sqrt(v)
  pt(crit, df, ncp, lower.tail = FALSE) + pt(-crit, df, ncp)
})
out$covariates <- cov
#    (c) exact cluster sizes (van Breukelen et al. 2007): arm information sum_i m_i / (sd^2 (1 + (m_i - 1) ICC))
sizes <- c(5, 12, 20, 33, 8, 60, 15, 27)
exact <- expand.grid(d = c(0.3, 0.5), icc = c(0.02, 0.1))
exact$power <- mapply(function(d, icc) {
  info <- sum(sizes / (1 + (sizes - 1) * icc))
  k <- length(sizes); df <- 2 * k - 2; crit <- qt(0.975, df); ncp <- d / sqrt(2 / info)
  pt(crit, df, ncp, lower.tail = FALSE) + pt(-crit, df, ncp)
}, exact$d, exact$icc)
out$exact_sizes <- list(sizes = sizes, table = exact)
#    (d) multi-arm: A arms of k clusters against a shared control, pooled t on A k - A df; Bonferroni alpha / (A - 1),
#        Dunnett's critical value (as in 3); the power of one comparison
multi <- expand.grid(arms = c(3, 4), d = 0.5, icc = 0.05, m = 20, k = 8, method = c("bonferroni", "dunnett"),
                     stringsAsFactors = FALSE)
multi$power <- mapply(function(arms, d, icc, m, k, method) {
  df <- arms * k - arms; q <- arms - 1
  crit <- if (method == "bonferroni") qt(1 - 0.05 / q / 2, df)
          else uniroot(function(c) coverage(c, q, 0.5, df, 2) - 0.95, c(1, 6), tol = 1e-12)$root
  ncp <- d / sqrt(2 * (1 + (m - 1) * icc) / (m * k))
  pt(crit, df, ncp, lower.tail = FALSE) + pt(-crit, df, ncp)
}, multi$arms, multi$d, multi$icc, multi$m, multi$k, multi$method)
out$multi_arm <- multi

writeLines(toJSON(out, digits = NA, pretty = TRUE, auto_unbox = TRUE), "tests/data/power_R.json")
