# The selfheal operator image: `docker build -t selfheal .`, then `docker run selfheal run --all-namespaces`.
#
# The base is pinned to one Python patch release on Debian bookworm. To refresh it, pick the newest
# python:3.11.X-slim-bookworm tag, learn its digest and pin both, e.g.
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm --format '{{json .Manifest.Digest}}'
#   docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A virtualenv without pip: the runtime image gets the packages and nothing that installs more.
RUN python -m venv --without-pip /opt/selfheal
WORKDIR /src
# Dependencies first, in a layer of their own: the versions in constraints.txt, the names in pyproject.toml.
# A change to the source below reuses this layer; only a change to these two files installs them again.
COPY constraints.txt pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > requirements.txt \
 && pip --python /opt/selfheal/bin/python install --constraint constraints.txt --requirement requirements.txt
# Then selfheal itself (the build context, minus .dockerignore), leaving the dependencies above untouched.
COPY . ./
RUN pip --python /opt/selfheal/bin/python install --no-deps --constraint constraints.txt .

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="selfheal" \
      org.opencontainers.image.description="Self-healing Argo Rollouts canaries" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/selfheal /opt/selfheal
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin selfheal
USER 10001
ENV PATH=/opt/selfheal/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# 8080: the health endpoint (--liveness) both probes read; 9090: Prometheus metrics (--metrics-port).
EXPOSE 8080 9090
ENTRYPOINT ["selfheal"]
CMD ["run", "--all-namespaces", "--standalone", "--liveness=http://0.0.0.0:8080/healthz", "--metrics-port=9090", "--log-format=json"]
