# Reference numbers for tests/test_gee.py, computed locally with R 4.2 and geepack 1.3.9 (never in CI):
#   cd <repo> && Rscript tests/data/gee_small_R.R   (writes tests/data/gee_small.csv and gee_small_R.json)
# 1. geepack::geeglm with an exchangeable working correlation (coefficients, robust SE, alpha, scale),
#    converged tightly (geese.control(epsilon = 1e-12); the default 1e-4 stops a few digits short).
# 2. The small-sample corrections by their published formulas on dense n_i x n_i matrices, from geeglm's
#    estimates: Mancl & DeRouen (2001) (I - H_ii)^-1, Kauermann & Carroll (2001) (I - H_ii)^-1/2 (the
#    principal square root, by the Denman-Beavers iteration on the non-symmetric I - H_ii), Fay & Graubard
#    (2001) diag(1 - min(0.75, [B_i B^-1]_jj))^-1/2, and the MD-KC average (Ford & Westgate 2017).
suppressMessages({library(geepack); library(jsonlite)})

# a small trial: 12 clusters of 15 to 40 people, 6 treated, a random intercept, one covariate
set.seed(15)
k <- 12
sizes <- sample(15:40, k, replace = TRUE)
arm <- c(1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1)
cl <- rep(seq_len(k), sizes)
x <- round(rnorm(length(cl)), 6)
eta <- -0.3 + 0.5 * arm[cl] + 0.4 * x + rnorm(k, 0, 0.6)[cl]
d <- data.frame(cluster = cl, arm = arm[cl], x = x, y = round(eta + rnorm(length(cl)), 6),
                b = as.integer(runif(length(cl)) < plogis(eta)), n = rpois(length(cl), exp(eta)))
d <- d[sample(nrow(d)), ]  # rows shuffled: the Python side must not assume sorted clusters
write.csv(d, "tests/data/gee_small.csv", row.names = FALSE)
d <- read.csv("tests/data/gee_small.csv")
d <- d[order(d$cluster), ]  # geepack takes consecutive rows of one id as a cluster

# principal inverse square root of a matrix with positive real eigenvalues (Denman & Beavers 1976)
inv_sqrt <- function(a) {
  y <- a; z <- diag(nrow(a))
  for (it in 1:100) {
    y1 <- (y + solve(z)) / 2; z <- (z + solve(y)) / 2; y <- y1
    if (max(abs(y %*% y - a)) < 1e-14) break
  }
  z
}

corrections <- function(fit, data, family) {
  X <- model.matrix(fit)
  beta <- coef(fit); alpha <- fit$geese$alpha[[1]]; phi <- fit$geese$gamma[[1]]
  eta <- drop(X %*% beta)
  mu <- family$linkinv(eta); v <- family$variance(mu); dmu <- family$mu.eta(eta)
  ids <- data$cluster
  parts <- lapply(split(seq_len(nrow(X)), ids), function(rows) {
    n <- length(rows)
    R <- matrix(alpha, n, n); diag(R) <- 1
    V <- phi * diag(sqrt(v[rows]), n) %*% R %*% diag(sqrt(v[rows]), n)
    D <- dmu[rows] * X[rows, , drop = FALSE]
    list(D = D, Vinv = solve(V), e = d_resid <- data$resp[rows] - mu[rows])
  })
  B <- Reduce(`+`, lapply(parts, function(p) t(p$D) %*% p$Vinv %*% p$D))
  Binv <- solve(B)
  meat <- function(adjust) Reduce(`+`, lapply(parts, function(p) {
    u <- adjust(p) ; u %*% t(u)
  }))
  score <- function(p, m) t(p$D) %*% p$Vinv %*% m %*% p$e
  hat <- function(p) p$D %*% Binv %*% t(p$D) %*% p$Vinv
  robust <- Binv %*% meat(function(p) score(p, diag(length(p$e)))) %*% Binv
  md <- Binv %*% meat(function(p) score(p, solve(diag(length(p$e)) - hat(p)))) %*% Binv
  kc <- Binv %*% meat(function(p) score(p, inv_sqrt(diag(length(p$e)) - hat(p)))) %*% Binv
  fg <- Binv %*% meat(function(p) {
    Bi <- t(p$D) %*% p$Vinv %*% p$D
    diag((1 - pmin(0.75, diag(Bi %*% Binv)))^-0.5, length(beta)) %*% score(p, diag(length(p$e)))
  }) %*% Binv
  avg <- (md + kc) / 2
  se <- function(m) setNames(as.list(sqrt(diag(m))), names(beta))
  list(coef = as.list(beta), san_se = as.list(setNames(summary(fit)$coefficients[, "Std.err"], names(beta))),
       alpha = alpha, scale = phi,
       se = list(robust = se(robust), md = se(md), kc = se(kc), fg = se(fg), avg = se(avg)))
}

fit_one <- function(formula, data, family, response) {
  data$resp <- data[[response]]
  fit <- geeglm(formula, id = cluster, data = data, family = family, corstr = "exchangeable",
                control = geese.control(epsilon = 1e-12, maxit = 200))
  corrections(fit, data, family)
}

out <- list(
  small_gaussian = fit_one(y ~ arm + x, d, gaussian(), "y"),
  small_binomial = fit_one(b ~ arm + x, d, binomial(), "b"),
  small_poisson = fit_one(n ~ arm + x, d, poisson(), "n"))

# cvcrand's example: 16 counties x 300 people, the chosen scheme of its constrained space
dk <- read.csv("crt_widgets/datasets/dickinson_outcome.csv")
scheme <- c(0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0)
dk$arm <- scheme[dk$county]; dk$cluster <- dk$county
dk <- dk[order(dk$cluster), ]
out$dickinson_binomial <- fit_one(outcome ~ arm + inciis + location, dk, binomial(), "outcome")
# the adjustment of `crt-widgets analyze --example dickinson` (location and incomecat categorical)
out$dickinson_analyze <- fit_one(outcome ~ arm + location + inciis + uptodateonimmunizations + hispanic +
                                   factor(incomecat), dk, binomial(), "outcome")


writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/data/gee_small_R.json")
