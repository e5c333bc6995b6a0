# Reference values for tests/test_swcrtdesign.py and tests/test_multiperiod_power.py:
# swCRTdesign 4.0 (CRAN) under R 4.2, run locally, never in CI.
#   R CMD INSTALL -l /tmp/rlib <swCRTdesign 4.0 source>
#   Rscript tests/data/swcrtdesign_R.R    (from the repository root; writes tests/data/swcrtdesign_R.json)
# Each case gives swDsn's arguments, swPwr's arguments (only those R sees as given) and R's results.
.libPaths(c("/tmp/rlib", .libPaths()))
suppressMessages(library(swCRTdesign))
library(jsonlite)

sizes9 <- matrix(c(rep(c(20,20,20,20,20,20,20,20,20,20,20,20,20,20),5),
                   rep(c( 0,20,20,20,20,20,20,20,20,20,20,20,20,20),5),
                   rep(c( 0, 0,20,20,20,20,20,20,20,20,20,20,20,20),5),
                   rep(c( 0, 0, 0,20,20,20,20,20,20,20,20,20,20,20),5),
                   rep(c( 0, 0, 0, 0,20,20,20,20,20,20,20,20,20,20),5)), 25, 14, byrow = TRUE)
sizes7 <- matrix(c(26, 493,  64,  45,  48, 231, 117,  17,  49,  36,  19,  77, 67, 590,
  261, 212,  67, 318, 132,  58,  44,  57,  59,  78, 115, 532, 176, 199,  73, 293, 129,  79,  51,
  62, 109,  94, 174, 785, 133,  79, 120, 305, 224,  99,  83,  79, 122, 122, 94, 961,  90, 131, 166,
  352, 316,  59,  54, 131, 101, 133), nrow = 12, ncol = 5, byrow = FALSE)
sizes6 <- c(35219,53535,63785,456132,128670,96673,51454,156667,127440,68615,56502,17719,75931,58655,52874,75936)
# a transition period: no data in the first period on treatment (n = 0 there), varying sizes elsewhere
transition <- matrix(c(12,0,15,15, 12,0,15,15, 12,0,15,15,
                       10,11,0,12, 10,11,0,12, 10,11,0,12,
                       14,14,13,0, 14,14,13,0, 14,14,13,0), 9, 4, byrow = TRUE)
cohort_sizes <- matrix(c(rep(c(8,8,8,8),2), rep(c(0,12,12,12),2), rep(c(10,10,10,0),2)), 6, 4, byrow = TRUE)
mat10 <- matrix(c(0,1,1,1,1, NA,0,1,1,1, NA,NA,0,1,1, NA,NA,NA,0,1), 4, 5, byrow = TRUE)
mat11 <- matrix(c(0,1,2,2,2,2, NA,0,1,2,2,2, NA,NA,0,1,2,2, NA,NA,NA,0,1,2), 4, 6, byrow = TRUE)
mat_ex10 <- matrix(c(0,1,2,2,2,2, NA,0,1,2,2,2, NA,NA,0,1,2,2, NA,NA,NA,0,1,2), 4, 6, byrow = TRUE)

bin <- list(distn = "binomial", n = 120, mu0 = 0.05, mu1 = 0.035)
cases <- list(
  ex1_binomial = list(dsn = list(clusters = c(6,6,6,6)), pwr = c(bin, list(tau = 0.01, eta = 0, rho = 0, gamma = 0))),
  ex2_extra_trt_time = list(dsn = list(clusters = c(6,6,6,6), extra.trt.time = 3),
                            pwr = c(bin, list(tau = 0.01, eta = 0, rho = 0, gamma = 0))),
  ex3_random_treatment = list(dsn = list(clusters = c(6,6,6,6)), pwr = c(bin, list(tau = 0.01, eta = 0.0045))),
  ex4_correlated_treatment = list(dsn = list(clusters = c(6,6,6,6)),
                                  pwr = c(bin, list(tau = 0.01, eta = 0.0045, rho = 0.4))),
  ex5_random_time = list(dsn = list(clusters = c(6,6,6,6)),
                         pwr = c(bin, list(tau = 0.01, eta = 0.0045, rho = 0.4, gamma = 0.1))),
  ex6_n_per_cluster = list(dsn = list(clusters = c(4,3,5,4)),
                           pwr = list(distn = "gaussian", n = sizes6, mu0 = 2.66, mu1 = 2.15, sigma = sqrt(1/2.66),
                                      tau = 0.31, eta = 0.2, rho = 0, gamma = 0.15)),
  ex7_n_per_period = list(dsn = list(clusters = c(3,3,3,3)),
                          pwr = list(distn = "binomial", n = sizes7, mu0 = 0.08, mu1 = 0.06, tau = 0.017,
                                     eta = 0.006, rho = -0.5, gamma = 0)),
  ex8_icc_cac = list(dsn = list(clusters = c(6,6,6,6)),
                     pwr = list(distn = "gaussian", n = 120, mu0 = 0.05, mu1 = 0.035, sigma = 0.1, icc = 0.02, cac = 0.125)),
  ex9_cohort_random_effects = list(dsn = list(clusters = c(5,5,5,5,5), extra.ctl.time = 3, extra.trt.time = 5),
                                   pwr = list(distn = "gaussian", n = sizes9, mu0 = -0.4, mu1 = 0.4, sigma = 1,
                                              tau = sqrt(0.1316), gamma = sqrt(0.1974), eta = 0, rho = 0,
                                              zeta = sqrt(2.5))),
  ex10_swblk_two_levels = list(dsn = list(clusters = c(6,6,6,6), swBlk = mat_ex10),
                               pwr = list(distn = "binomial", n = 120, mu0 = 0.05, mu1 = c(0.035, 0.03),
                                          tau = 0.01, eta = 0, rho = 0, gamma = 0, retDATA = TRUE)),
  cohort_icc_cac_iac = list(dsn = list(clusters = c(3,3,3)),
                            pwr = list(distn = "gaussian", n = 15, mu0 = 0, mu1 = 0.3, sigma = 1,
                                       icc = 0.05, cac = 0.7, iac = 0.4, retDATA = TRUE)),
  binomial_icc = list(dsn = list(clusters = c(4,4,4)),
                      pwr = list(distn = "binomial", n = 50, mu0 = 0.3, mu1 = 0.2, icc = 0.03)),
  binomial_icc_cac_iac = list(dsn = list(clusters = c(2,2,2,2)),
                              pwr = list(distn = "binomial", n = 30, mu0 = 0.3, mu1 = 0.2, icc = 0.05, cac = 0.5, iac = 0.3)),
  cross_sectional_icc_cac = list(dsn = list(clusters = c(2,2,2,2,2)),
                                 pwr = list(distn = "gaussian", n = 25, mu0 = 0, mu1 = 0.25, sigma = 1.3,
                                            icc = 0.08, cac = 0.6)),
  all_ctl_time0_false = list(dsn = list(clusters = c(3,3,3), all.ctl.time0 = FALSE),
                             pwr = list(distn = "gaussian", n = 20, mu0 = 0, mu1 = 0.4, sigma = 1, tau = 0.2)),
  all_ctl_time0_false_extra_times = list(dsn = list(clusters = c(2,2,2,2), extra.ctl.time = 1, extra.trt.time = 2,
                                                    all.ctl.time0 = FALSE),
                                         pwr = list(distn = "gaussian", n = 10, mu0 = 1, mu1 = 1.5, sigma = 2,
                                                    icc = 0.1)),
  extra_ctl_time = list(dsn = list(clusters = c(3,3,3), extra.ctl.time = 2),
                        pwr = list(distn = "binomial", n = 40, mu0 = 0.5, mu1 = 0.4, tau = 0.05, gamma = 0.03)),
  fractional_vector = list(dsn = list(clusters = c(3,3,3,3), tx.effect.frac = c(0.4, 0.8), extra.trt.time = 1),
                           pwr = list(distn = "gaussian", n = 25, mu0 = 0, mu1 = 0.3, sigma = 1, tau = 0.15,
                                      eta = 0.05, rho = 0.3)),
  fractional_scalar = list(dsn = list(clusters = c(4,4,4), tx.effect.frac = 0.5),
                           pwr = list(distn = "binomial", n = 60, mu0 = 0.2, mu1 = 0.12, icc = 0.02, cac = 0.8)),
  eti_equal_weights = list(dsn = list(clusters = c(3,3,3,3)),
                           pwr = list(distn = "gaussian", n = 20, mu0 = 0, mu1 = 0.5, sigma = 1, tau = 0.2, H = 1)),
  eti_late_exposures = list(dsn = list(clusters = c(3,3,3,3)),
                            pwr = list(distn = "gaussian", n = 20, mu0 = 0, mu1 = 0.5, sigma = 1, tau = 0.2,
                                       H = c(0, 0, 0.5, 0.5), retDATA = TRUE)),
  eti_renormalized = list(dsn = list(clusters = c(3,3,3,3)),
                          pwr = list(distn = "gaussian", n = 20, mu0 = 0, mu1 = 0.5, sigma = 1, icc = 0.05,
                                     cac = 0.7, H = c(1, 1, 2, 2))),
  eti_swblk_na = list(dsn = list(clusters = c(3,3,3), swBlk = matrix(c(0,1,1,NA, 0,0,1,1, NA,0,0,1), 3, 4, byrow = TRUE)),
                      pwr = list(distn = "gaussian", n = 30, mu0 = 0, mu1 = 0.4, sigma = 1, tau = 0.25,
                                 H = c(0.5, 0.5))),
  eti_cohort = list(dsn = list(clusters = c(2,2,2,2), extra.trt.time = 1),
                    pwr = list(distn = "binomial", n = 25, mu0 = 0.4, mu1 = 0.25, icc = 0.04, cac = 0.9, iac = 0.5,
                               H = c(0.25, 0.25, 0.25, 0.25, 0))),
  eti_transition = list(dsn = list(clusters = c(2,2,2), swBlk = matrix(c(0,NA,1,1,1, 0,0,NA,1,1, 0,0,0,NA,1), 3, 5,
                                                                      byrow = TRUE)),
                        pwr = list(distn = "gaussian", n = 25, mu0 = 0, mu1 = 0.5, sigma = 1, icc = 0.05, cac = 0.9,
                                   H = c(1, 1, 1) / 3)),
  zero_wave = list(dsn = list(clusters = c(3,0,2)),
                   pwr = list(distn = "gaussian", n = 10, mu0 = 0, mu1 = 0.5, sigma = 1, tau = 0.3, retDATA = TRUE)),
  zero_wave_fractional = list(dsn = list(clusters = c(3,0,2), tx.effect.frac = c(0.8, 0.9, 1.0), extra.trt.time = 2),
                              pwr = list(distn = "binomial", n = 30, mu0 = 0.3, mu1 = 0.45, tau = 0.05, eta = 0.02)),
  transition_periods = list(dsn = list(clusters = c(3,3,3)),
                            pwr = list(distn = "gaussian", n = transition, mu0 = 0, mu1 = 0.35, sigma = 1, tau = 0.2,
                                       eta = 0.1, rho = -0.3, gamma = 0.1, retDATA = TRUE)),
  cohort_n_per_cluster = list(dsn = list(clusters = c(2,2,2)),
                              pwr = list(distn = "gaussian", n = c(10, 12, 8, 15, 9, 11), mu0 = 0, mu1 = 0.4,
                                         sigma = 1, tau = 0.2, gamma = 0.1, zeta = 0.6)),
  cohort_n_per_period_icc = list(dsn = list(clusters = c(2,2,2)),
                                 pwr = list(distn = "gaussian", n = cohort_sizes, mu0 = 0, mu1 = 0.5, sigma = 1,
                                            icc = 0.06, cac = 0.75, iac = 0.35)),
  swblk_na = list(dsn = list(clusters = c(5,6,6,5), swBlk = mat10),
                  pwr = list(distn = "gaussian", n = 20, mu0 = 0, mu1 = 0.3, sigma = 1, tau = 0.2, eta = 0.1,
                             rho = 0.5, gamma = 0.05)),
  swblk_two_levels_cohort = list(dsn = list(clusters = c(5,6,6,5), swBlk = mat11),
                                 pwr = list(distn = "gaussian", n = 12, mu0 = 0, mu1 = c(0.2, 0.35), sigma = 1,
                                            icc = 0.04, cac = 0.6, iac = 0.5, retDATA = TRUE)),
  swblk_levels_column_order = list(dsn = list(clusters = c(3,3,3),
                                              swBlk = matrix(c(0,2,2,2, 0,0,1,2, 0,1,1,2), 3, 4, byrow = TRUE)),
                                   pwr = list(distn = "gaussian", n = 20, mu0 = 0, mu1 = c(0.5, 0.3), sigma = 1, tau = 0.2)),
  swblk_all_na_column = list(dsn = list(clusters = c(2,3),
                                        swBlk = matrix(c(0,NA,1,1, 0,NA,0,1), 2, 4, byrow = TRUE)),
                             pwr = list(distn = "gaussian", n = 15, mu0 = 0, mu1 = 0.6, sigma = 1, tau = 0.3)),
  dogleg = list(dsn = list(clusters = c(4,4,4), swBlk = matrix(c(1,NA, 0,1, NA,0), 3, 2, byrow = TRUE)),
                pwr = list(distn = "gaussian", n = 30, mu0 = 0, mu1 = 0.4, sigma = 1, tau = 0.2)),
  parallel_baseline = list(dsn = list(clusters = c(5,5), swBlk = matrix(c(0,1, 0,0), 2, 2, byrow = TRUE)),
                           pwr = list(distn = "gaussian", n = 30, mu0 = 0, mu1 = 0.4, sigma = 1, icc = 0.05, cac = 0.8)),
  crossover_two_period = list(dsn = list(clusters = c(4,4), swBlk = matrix(c(1,0, 0,1), 2, 2, byrow = TRUE)),
                              pwr = list(distn = "gaussian", n = 50, mu0 = 0, mu1 = 0.2, sigma = 1, icc = 0.05, cac = 0.5)),
  crossover_four_period_cohort = list(dsn = list(clusters = c(3,3), swBlk = matrix(c(1,0,1,0, 0,1,0,1), 2, 4, byrow = TRUE)),
                                      pwr = list(distn = "binomial", n = 40, mu0 = 0.3, mu1 = 0.2, icc = 0.03,
                                                 cac = 0.7, iac = 0.4)),
  stepped_wedge_10x6 = list(dsn = list(clusters = rep(6, 10)),
                            pwr = list(distn = "gaussian", n = 20, mu0 = 0, mu1 = 0.1, sigma = 1, icc = 0.05, cac = 0.8)),
  stepped_wedge_10x6_random_effects = list(dsn = list(clusters = rep(6, 10)),
                                           pwr = list(distn = "gaussian", n = 20, mu0 = 0, mu1 = 0.1, sigma = 1,
                                                      tau = 0.2, eta = 0.05, rho = 0.2, gamma = 0.1))
)

as_json_value <- function(x) {
  if (is.matrix(x)) return(unname(x))
  unname(x)
}
out <- list()
for (name in names(cases)) {
  cs <- cases[[name]]
  design <- do.call(swDsn, cs$dsn)
  result <- suppressWarnings(do.call(swPwr, c(list(design = design), cs$pwr, list(silent = TRUE))))
  # every case also keeps the variance of the estimate (informative where the power is close to 1)
  full <- suppressWarnings(do.call(swPwr, c(list(design = design), cs$pwr[names(cs$pwr) != "retDATA"],
                                            list(retDATA = TRUE, silent = TRUE))))
  d <- lapply(design, as_json_value)
  names(d) <- gsub(".", "_", names(d), fixed = TRUE)
  entry <- list(swDsn_args = lapply(cs$dsn, as_json_value), swPwr_args = lapply(cs$pwr, as_json_value), swDsn = d)
  if (is.list(result)) {
    entry$power <- as.vector(result$pwrWLS)
    entry$retDATA <- list(tau = result$tau, eta = result$eta, rho = result$rho, gamma = result$gamma,
                          zeta = result$zeta, sigma = result$sigma, var = unname(as.matrix(result$var)),
                          var_theta_WLS = as.vector(result$var.theta.WLS), Xmat_dim = dim(result$Xmat),
                          Wmat_dim = dim(result$Wmat), Xmat_colnames = colnames(result$Xmat))
    if (nrow(result$Wmat) <= 40) {
      entry$retDATA$Xmat <- unname(result$Xmat)
      entry$retDATA$Wmat <- unname(result$Wmat)
    }
  } else {
    entry$power <- as.vector(result)
  }
  entry$var_theta_WLS <- as.vector(full$var.theta.WLS)
  out[[name]] <- entry
}
writeLines(toJSON(out, digits = NA, na = "null", auto_unbox = TRUE, matrix = "rowmajor", pretty = TRUE),
           "tests/data/swcrtdesign_R.json")
cat(sprintf("%-36s %s\n", names(out), sapply(out, function(e) paste(sprintf("%.10f", e$power), collapse = " "))), sep = "")
