# Reference values for tests/test_ddf.py: Satterthwaite df at a variance estimated on its boundary.
# Run from the repository root: Rscript tests/data/ddf_boundary_R.R (R 4.2, lme4, lmerTest, pbkrtest, jsonlite).
# tests/data/ddf_boundary.csv: a simulated stepped-wedge trial (8 clusters, 5 periods, 1,220 people) whose
# cluster-period variance is estimated at 0 (a singular fit). lmerTest's df are those of the model without
# that variance component.
suppressPackageStartupMessages({library(lmerTest); library(pbkrtest); library(jsonlite)})
d <- read.csv("tests/data/ddf_boundary.csv")
d$period <- factor(d$period)
tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
nested <- lmer(y ~ treatment + period + (1 | cluster/period), data = d, REML = TRUE, control = tight)
stopifnot(isSingular(nested))
satt <- coef(summary(nested))
kr <- coef(summary(nested, ddf = "Kenward-Roger"))
out <- list(terms = rownames(satt), estimate = unname(satt[, "Estimate"]), se = unname(satt[, "Std. Error"]),
            satterthwaite_df = unname(satt[, "df"]), satterthwaite_p = unname(satt[, "Pr(>|t|)"]),
            kr_se = unname(kr[, "Std. Error"]), kr_df = unname(kr[, "df"]))
write_json(out, "tests/data/ddf_boundary_R.json", digits = NA, pretty = TRUE)
