# Reference numbers for tests/test_icc.py, computed locally with R 4.2 and lme4 (never in CI):
#   cd <repo> && Rscript tests/data/icc_R.R   (writes tests/data/icc_R.json)
# - ANOVA: Donner's (1986) estimator for unequal cluster sizes, by hand, with Searle's F interval.
# - REML: lmer(y ~ 1 + (1 | cluster)); the interval profiles lme4's REML criterion over theta = sigma_b / sigma
#   (devFunOnly = TRUE), the limits where it rises qchisq(1 - alpha, 1) above its minimum (0 if it never does).
# - latent: glmer(y ~ 1 + (1 | cluster), binomial, nAGQ = 10); sigma_b's profile likelihood (the intercept
#   maximised at each sigma_b through lme4's deviance function), ICC = s^2 / (s^2 + pi^2 / 3).
suppressMessages({library(lme4); library(jsonlite)})

anova_icc <- function(y, g, alpha) {
  n <- tapply(y, g, length); k <- length(n); N <- sum(n)
  means <- tapply(y, g, mean)
  msb <- sum(n * (means - mean(y))^2) / (k - 1)
  msw <- sum((y - means[as.character(g)])^2) / (N - k)
  m0 <- (N - sum(n^2) / N) / (k - 1)
  f <- msb / msw
  fl <- f / qf(1 - alpha / 2, k - 1, N - k); fu <- f / qf(alpha / 2, k - 1, N - k)
  list(estimate = (msb - msw) / (msb + (m0 - 1) * msw), ci_low = (fl - 1) / (fl + m0 - 1),
       ci_high = (fu - 1) / (fu + m0 - 1), msb = msb, msw = msw, m0 = m0)
}

limits <- function(excess, est, cap) {
  low <- if (excess(0) > 0) uniroot(excess, c(0, est), tol = 1e-13)$root else 0
  high <- uniroot(excess, c(est, cap), tol = 1e-13)$root
  c(low, high)
}

reml_icc <- function(y, g, alpha) {
  d <- data.frame(y = y, g = factor(g))
  fit <- lmer(y ~ 1 + (1 | g), data = d, REML = TRUE,
              control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.02, rhoend = 1e-12)))
  devfun <- lmer(y ~ 1 + (1 | g), data = d, REML = TRUE, devFunOnly = TRUE)
  theta <- getME(fit, "theta")[[1]]
  best <- devfun(theta)
  lim <- limits(function(t) devfun(t) - best - qchisq(1 - alpha, 1), theta, 100)
  vc <- as.data.frame(VarCorr(fit))$vcov
  list(estimate = vc[1] / sum(vc), ci_low = lim[1]^2 / (1 + lim[1]^2), ci_high = lim[2]^2 / (1 + lim[2]^2),
       theta = theta, cluster_variance = vc[1], residual_variance = vc[2], reml_deviance = best)
}

latent_icc <- function(y, g, alpha) {
  d <- data.frame(y = y, g = factor(g))
  fit <- glmer(y ~ 1 + (1 | g), data = d, family = binomial, nAGQ = 10,
               control = glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12)))
  devfun <- glmer(y ~ 1 + (1 | g), data = d, family = binomial, nAGQ = 10, devFunOnly = TRUE)
  sigma <- getME(fit, "theta")[[1]]
  # the deviance minimised over the intercept at a given sigma (sigma = 0: the logistic GLM)
  profile <- function(s) {
    if (s == 0) return(-2 * as.numeric(logLik(glm(y ~ 1, data = d, family = binomial))))
    optimize(function(b) devfun(c(s, b)), fixef(fit)[[1]] + c(-3, 3), tol = 1e-12)$objective
  }
  best <- profile(sigma)
  lim <- limits(function(s) profile(s) - best - qchisq(1 - alpha, 1), sigma, 20)
  to_icc <- function(s) s^2 / (s^2 + pi^2 / 3)
  list(estimate = to_icc(sigma), ci_low = to_icc(lim[1]), ci_high = to_icc(lim[2]), sigma = sigma,
       loglik = as.numeric(logLik(fit)))
}

small <- read.csv("tests/data/gee_small.csv")
dk <- read.csv("crt_widgets/datasets/dickinson_outcome.csv")
out <- list(
  small_y = list(anova = anova_icc(small$y, small$cluster, 0.05), reml = reml_icc(small$y, small$cluster, 0.05),
                 anova_90 = anova_icc(small$y, small$cluster, 0.10), reml_90 = reml_icc(small$y, small$cluster, 0.10)),
  small_b = list(anova = anova_icc(small$b, small$cluster, 0.05), latent = latent_icc(small$b, small$cluster, 0.05)),
  dickinson = list(anova = anova_icc(dk$outcome, dk$county, 0.05), reml = reml_icc(dk$outcome, dk$county, 0.05),
                   latent = latent_icc(dk$outcome, dk$county, 0.05)))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/data/icc_R.json")
