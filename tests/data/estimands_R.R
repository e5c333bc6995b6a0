# Reference numbers for tests/test_estimands.py, computed locally with R 4.2 and sandwich (never in CI):
#   cd <repo> && Rscript tests/data/estimands_R.R   (writes tests/data/estimands_R.json)
# Cluster-average (weights 1/n_i) and individual-average (weights 1) effects by standardization after a
# weighted glm (arm + x), and the uncorrected cluster-robust SE of the stacked estimating equations
# (regression scores and the two standardized means), by hand from glm's fit. Also sandwich::vcovCL's
# cluster-robust coefficient SEs of the weighted linear model: HC0 (no adjustment) is the robust sandwich,
# HC2 and HC3 with cadjust = TRUE are Kauermann-Carroll and Mancl-DeRouen for an independence working model.
suppressMessages({library(sandwich); library(jsonlite)})
d <- read.csv("tests/data/gee_small.csv")
d$size <- ave(d$y, d$cluster, FUN = length)

standardized <- function(formula, family, weights) {
  d$w <- weights
  fit <- suppressWarnings(glm(formula, family = family, weights = w, data = d,
                             control = glm.control(epsilon = 1e-15, maxit = 100)))
  X <- model.matrix(fit); beta <- coef(fit)
  mu <- fitted(fit); v <- family$variance(mu)
  y <- model.response(model.frame(fit))
  U <- rowsum(d$w * (y - mu) * X, d$cluster)            # cluster scores
  B <- crossprod(X, d$w * family$mu.eta(drop(X %*% beta)) * X)
  W <- sum(d$w)
  arm_means <- sapply(c(1, 0), function(a) {
    Xa <- X; Xa[, "arm"] <- a
    mu_a <- family$linkinv(drop(Xa %*% beta))
    m <- sum(d$w * mu_a) / W
    G <- colSums(d$w * family$mu.eta(drop(Xa %*% beta)) * Xa)
    psi <- rowsum(d$w * (mu_a - m), d$cluster)
    list(m = m, influence = drop((psi + U %*% solve(B) %*% G) / W))
  }, simplify = FALSE)
  m1 <- arm_means[[1]]$m; m0 <- arm_means[[2]]$m
  i1 <- arm_means[[1]]$influence; i0 <- arm_means[[2]]$influence
  list(treated_mean = m1, control_mean = m0, difference = m1 - m0, ratio = m1 / m0,
       se_difference = sqrt(sum((i1 - i0)^2)), se_log_ratio = sqrt(sum((i1 / m1 - i0 / m0)^2)))
}

out <- list()
for (estimand in c("cluster-average", "individual-average")) {
  w <- if (estimand == "cluster-average") 1 / d$size else rep(1, nrow(d))
  out[[estimand]] <- list(binomial = standardized(b ~ arm + x, binomial(), w),
                          poisson = standardized(n ~ arm + x, poisson(), w),
                          gaussian = standardized(y ~ arm + x, gaussian(), w))
  d$w <- w
  lin <- glm(y ~ arm + x, family = gaussian, weights = w, data = d)
  out[[estimand]]$linear_se <- list(
    robust = as.list(sqrt(diag(vcovCL(lin, cluster = ~cluster, type = "HC0", cadjust = FALSE)))),
    kc = as.list(sqrt(diag(vcovCL(lin, cluster = ~cluster, type = "HC2", cadjust = TRUE)))),
    md = as.list(sqrt(diag(vcovCL(lin, cluster = ~cluster, type = "HC3", cadjust = TRUE)))))
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/data/estimands_R.json")
