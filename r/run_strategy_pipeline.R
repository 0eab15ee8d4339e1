#!/usr/bin/env Rscript
# ibkrtool's R strategy engine: read a bars CSV, write the per-bar position CSV (the same columns as the
# Python engine: ts, close, position, signal, then the indicator columns).
#
# Usage: Rscript run_strategy_pipeline.R STRATEGY INPUT.csv OUTPUT.csv [key=value ...]
#   INPUT.csv needs columns ts, open, high, low, close (ts is copied through untouched).
# Exit status 3 with one line on stderr for bad input; TTR missing -> install hint.

args <- commandArgs(trailingOnly = TRUE)
fail <- function(msg) {
  cat(msg, "\n", sep = "", file = stderr())
  quit(status = 3)
}
if (length(args) < 3) fail("usage: run_strategy_pipeline.R STRATEGY INPUT.csv OUTPUT.csv [key=value ...]")
if (!requireNamespace("TTR", quietly = TRUE)) {
  fail("R package TTR is not installed: apt-get install r-cran-ttr, or in R: install.packages(\"TTR\")")
}
script_dir <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])))
source(file.path(script_dir, "functions.R"))

name <- args[1]
strategy <- strategies[[name]]
if (is.null(strategy)) fail(sprintf("strategy '%s' has no R implementation; R has: %s", name,
                                    paste(names(strategies), collapse = ", ")))
params <- tryCatch(parse_params(args[-(1:3)], strategy$defaults), error = function(e) fail(conditionMessage(e)))
bars <- read.csv(args[2], colClasses = c(ts = "character"), check.names = FALSE)
missing <- setdiff(c("ts", "open", "high", "low", "close"), names(bars))
if (length(missing)) fail(sprintf("input lacks column(s) %s", paste(missing, collapse = ", ")))

result <- strategy$run(bars, params)
out <- data.frame(ts = bars$ts, close = exact(bars$close), position = exact(result$position),
                  signal = ifelse(is.na(result$signal), "", result$signal), stringsAsFactors = FALSE)
for (col in names(result$indicators)) out[[col]] <- exact(result$indicators[[col]])
write.csv(out, args[3], row.names = FALSE, quote = FALSE, na = "")
