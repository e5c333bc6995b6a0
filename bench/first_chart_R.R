# The R anchor of bench/bench_first_chart.py: seconds from R's start to cvcrand's histogram of the balance
# scores (cvrall's bhist) on the Dickinson example, the chart our app draws first.
# cvcrand 0.1.1 is not installed on this machine (its dependency tableone is not either): run from a
# temporary copy of its sources (git archive of cran/cvcrand), as
#     Rscript bench/first_chart_R.R /path/to/cvcrand-sources
# tableone is only used after the histogram (the baseline table), so it is replaced by a stub that stops there.
t_start <- Sys.time()
args <- commandArgs(trailingOnly = TRUE)
src <- if (length(args)) args[1] else "cvcrand"
source(file.path(src, "R", "cvrall.R"))
load(file.path(src, "data", "Dickinson_design.rda"))
first_chart <- NA
hist <- function(...) {
  graphics::hist(...)
  first_chart <<- as.numeric(difftime(Sys.time(), t_start, units = "secs"))
}
CreateTableOne <- function(...) stop("timing ends at the histogram")
png(tempfile(fileext = ".png"))
invisible(try(cvrall(clustername = Dickinson_design$county, balancemetric = "l2",
                     x = data.frame(Dickinson_design[, c("location", "inciis", "uptodateonimmunizations",
                                                         "hispanic", "incomecat")]),
                     ntotal_cluster = 16, ntrt_cluster = 8, categorical = c("location", "incomecat"),
                     bhist = TRUE, cutoff = 0.1, seed = 12345), silent = TRUE))
invisible(dev.off())
cat(sprintf("R: histogram of the balance scores %.2f s after the script started\n", first_chart))
