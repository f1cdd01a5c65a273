# casevars: the production image. It always talks to a given Postgres (DATABASE_URL)
# and S3 (S3_ENDPOINT_URL), so the embedded default's wheels (extra `embedded`) stay out.
#
#   docker build -t casevars .
#   docker run -e DATABASE_URL=... -e S3_ENDPOINT_URL=... -p 8080:8080 casevars

ARG PYTHON_IMAGE=python:3.11.15-slim-trixie

# Build stage: a virtual environment under /opt/casevars holding casevars and its
# dependencies (all of them ship binary wheels, so no compiler is needed).
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# The venv gets no pip of its own: the base image's pip installs into it.
RUN python -m venv --without-pip /opt/casevars

# pip builds the wheel from these sources and installs it; the migrations travel inside
# it as the package service.migrations (see pyproject.toml).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service/ service/
COPY migrations/ migrations/
RUN pip --python /opt/casevars/bin/python install /src

# Final stage: the same Python, the venv, nothing else. No compiler, no sources.
FROM ${PYTHON_IMAGE}

# A fixed numeric id (the Helm chart's runAsUser), so Kubernetes' runAsNonRoot can
# check it; the account entry is only for tools that look the id up.
RUN groupadd --system --gid 10001 casevars \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin casevars

COPY --from=build /opt/casevars /opt/casevars

# Configuration comes only from the environment (see the README); these two make the
# service reachable from outside the container. pip compiled the bytecode at build
# time, so Python never writes to the (read-only in Kubernetes) root filesystem.
ENV PATH=/opt/casevars/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CASEVARS_HOST=0.0.0.0 \
    CASEVARS_PORT=8080

USER 10001:10001
WORKDIR /tmp
EXPOSE 8080

CMD ["casevars", "serve"]
