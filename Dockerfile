# ibkrtool: the CLI with R and TTR (for `strategy --engine r`), from Debian packages on a slim Python image.
#   docker build -t ibkrtool .            docker run --rm ibkrtool --help
# Runs as an unprivileged user; /data is the working directory (SQLite databases, CSVs, charts).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    COLUMNS=120

# R and TTR from Debian (no compiler, no CRAN at build time). Versions follow the bookworm release: pinning exact
# Debian revisions breaks the build at every point release, so DL3008 is waived here.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends r-base-core r-cran-ttr \
    && rm -rf /var/lib/apt/lists/* \
    && Rscript -e 'library(TTR)'

WORKDIR /opt/ibkrtool
# Only what the wheel needs (see .dockerignore), then the helper scripts the compose services run.
COPY pyproject.toml README.md ./
COPY ibkrtool ./ibkrtool
COPY sql ./sql
COPY r ./r
RUN pip install --no-compile . && ibkrtool --version
COPY scripts/demo_clock.py deploy/pipeline.sh ./scripts/

RUN groupadd --gid 10001 ibkr && useradd --create-home --uid 10001 --gid 10001 ibkr \
    && mkdir -p /data && chown 10001:10001 /data
USER 10001:10001
WORKDIR /data

ENTRYPOINT ["ibkrtool"]
CMD ["--help"]
