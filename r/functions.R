# Indicator and signal helpers for ibkrtool's R engine, on TTR.
# The rules mirror ibkrtool/strategies/*.py exactly; the parity test holds the two engines to 1e-9.

suppressPackageStartupMessages(library(TTR))

# NA-safe condition: warm-up NAs never trigger anything.
is_true <- function(x) !is.na(x) & x

# Target positions in {-1, 0, 1} from per-bar conditions at each close (same rules as strategies/latch.py):
# flat -> long on long_entry (else short on short_entry); long -> flat on long_exit, or straight to short if
# short_entry holds on that bar too (and the mirror image for shorts). One change per bar.
latch <- function(long_entry, long_exit, short_entry, short_exit) {
  n <- length(long_entry)
  pos <- numeric(n)
  state <- 0
  for (t in seq_len(n)) {
    if (state == 1) {
      if (long_exit[t]) state <- if (short_entry[t]) -1 else 0
    } else if (state == -1) {
      if (short_exit[t]) state <- if (long_entry[t]) 1 else 0
    } else if (long_entry[t]) {
      state <- 1
    } else if (short_entry[t]) {
      state <- -1
    }
    pos[t] <- state
  }
  pos
}

# Label each change of position; other bars get NA.
signals_from_positions <- function(pos, labels) {
  before <- c(0, head(pos, -1))
  sig <- rep(NA_character_, length(pos))
  changed <- which(before != pos)
  sig[changed] <- labels[paste(before[changed], pos[changed])]
  sig
}

ema_tolerance <- 1e-12

ema_aroon_defaults <- list(ema_fast = 20, ema_slow = 50, aroon_n = 25, aroon_upper = 70, aroon_lower = 30,
                           allow_short = FALSE)

# ema-aroon: long when EMA fast > slow and Aroon up >= upper and down <= lower; exit a long on fast < slow
# (exit:ema-cross) or Aroon down > up (exit:aroon); shorts mirrored when allow_short.
ema_aroon <- function(bars, p) {
  fast <- as.numeric(EMA(bars$close, n = p$ema_fast))
  slow <- as.numeric(EMA(bars$close, n = p$ema_slow))
  ar <- aroon(cbind(bars$high, bars$low), n = p$aroon_n)
  up <- as.numeric(ar[, "aroonUp"])
  dn <- as.numeric(ar[, "aroonDn"])
  # EMAs differing by rounding noise only (1e-12 relative) count as equal, as in ema_aroon.py
  tol <- ema_tolerance * abs(slow)
  ema_up <- is_true(fast - slow > tol)
  ema_down <- is_true(fast - slow < -tol)
  long_entry <- ema_up & is_true(up >= p$aroon_upper & dn <= p$aroon_lower)
  short_entry <- ema_down & is_true(dn >= p$aroon_upper & up <= p$aroon_lower)
  if (!isTRUE(p$allow_short)) short_entry[] <- FALSE
  pos <- latch(long_entry, ema_down | is_true(dn > up), short_entry, ema_up | is_true(up > dn))
  sig <- signals_from_positions(pos, c("0 1" = "entry:long", "0 -1" = "entry:short", "1 0" = "exit",
                                       "-1 0" = "exit", "1 -1" = "flip:short", "-1 1" = "flip:long"))
  for (i in which(sig == "exit")) {
    crossed <- if (pos[i - 1] == 1) ema_down[i] else ema_up[i]
    sig[i] <- if (crossed) "exit:ema-cross" else "exit:aroon"
  }
  list(position = pos, signal = sig,
       indicators = data.frame(ema_fast = fast, ema_slow = slow, aroon_up = up, aroon_down = dn,
                               aroon_oscillator = up - dn))
}

# Bar t sees x[t - k] (k > 0 looks back, k < 0 ahead); NA outside the series.
lagged <- function(x, k) {
  n <- length(x)
  if (k == 0) return(x)
  if (abs(k) >= n) return(rep(NA_real_, n))
  if (k > 0) c(rep(NA_real_, k), x[seq_len(n - k)]) else c(x[(1 - k):n], rep(NA_real_, -k))
}

# Carry the last non-NA value forward (NA before the first).
carry_forward <- function(x) {
  idx <- cummax(ifelse(is.na(x), 0L, seq_along(x)))
  out <- rep(NA_real_, length(x))
  out[idx > 0] <- x[idx[idx > 0]]
  out
}

# Swing pivots of strength n: a high strictly above the n highs on each side (lows mirrored), known n bars later.
swing_pivots <- function(high, low, n) {
  is_high <- rep(TRUE, length(high))
  is_low <- rep(TRUE, length(low))
  for (k in c(seq_len(n), -seq_len(n))) {
    is_high <- is_high & is_true(high > lagged(high, k))
    is_low <- is_low & is_true(low < lagged(low, k))
  }
  pivot_high <- ifelse(is_high, high, NA_real_)
  pivot_low <- ifelse(is_low, low, NA_real_)
  list(pivot_high = pivot_high, pivot_low = pivot_low,
       swing_high = carry_forward(lagged(pivot_high, n)), swing_low = carry_forward(lagged(pivot_low, n)))
}

ma_tolerance <- 1e-12
pivot_breakout_defaults <- list(pivot = 5, ma_period = 50, ma_type = "sma")

# pivot-breakout: long on a close above the last confirmed swing high while close > MA; flat on a close below
# the last confirmed swing low. Long only.
pivot_breakout <- function(bars, p) {
  ma <- if (p$ma_type == "ema") EMA(bars$close, n = p$ma_period) else SMA(bars$close, n = p$ma_period)
  ma <- as.numeric(ma)
  piv <- swing_pivots(bars$high, bars$low, p$pivot)
  entry <- is_true(bars$close > piv$swing_high & bars$close - ma > ma_tolerance * abs(ma))
  exit <- is_true(bars$close < piv$swing_low)
  never <- rep(FALSE, length(entry))
  pos <- latch(entry, exit, never, never)
  sig <- signals_from_positions(pos, c("0 1" = "entry:breakout", "1 0" = "exit:trailing-stop"))
  list(position = pos, signal = sig,
       indicators = data.frame(ma = ma, swing_high = piv$swing_high, swing_low = piv$swing_low,
                               pivot_high = piv$pivot_high, pivot_low = piv$pivot_low))
}

strategies <- list("ema-aroon" = list(run = ema_aroon, defaults = ema_aroon_defaults),
                   "pivot-breakout" = list(run = pivot_breakout, defaults = pivot_breakout_defaults))

# Parameters from "key=value" strings, typed like the defaults; unknown names stop with a one-line error.
parse_params <- function(args, defaults) {
  p <- defaults
  for (a in args) {
    kv <- strsplit(a, "=", fixed = TRUE)[[1]]
    key <- gsub("-", "_", kv[1], fixed = TRUE)
    value <- paste(kv[-1], collapse = "=")
    if (!(key %in% names(defaults))) stop(sprintf("unknown parameter '%s'", kv[1]), call. = FALSE)
    if (is.logical(defaults[[key]])) {
      p[[key]] <- tolower(value) %in% c("1", "true", "yes", "on", "y")
    } else if (is.character(defaults[[key]])) {
      p[[key]] <- gsub("^'|'$", "", value)
    } else {
      p[[key]] <- as.numeric(value)
      if (is.na(p[[key]])) stop(sprintf("parameter %s=%s is not a number", key, value), call. = FALSE)
    }
  }
  p
}

# Numbers as text that reads back to the same double (17 significant digits); NA as empty.
exact <- function(x) ifelse(is.na(x), "", sprintf("%.17g", x))
